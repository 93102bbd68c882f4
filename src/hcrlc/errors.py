"""Project exception hierarchy. Every message names the offending file or key and says how to fix it."""

from __future__ import annotations

import errno
from pathlib import Path


class HcrlcError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(HcrlcError, ValueError):
    """The configuration is invalid (unknown key, wrong type, impossible combination)."""


class DataError(HcrlcError, ValueError):
    """A data file or tree is missing, unreadable or not in the expected layout."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}. Fix: {fix}")


class DiskFullError(HcrlcError, OSError):
    """There is not enough free space for an output (checked before writing, or found when a write failed)."""

    def __init__(self, path: str | Path, free: int, needed: int | None = None, what: str = "",
                 written: int | None = None) -> None:
        self.path, self.free, self.needed = Path(path), free, needed
        free_text = f"{free} bytes ({human_bytes(free)}) free under {self.path.parent}"
        if needed is None:
            problem = (f"the disk filled up while writing it ({written} bytes ({human_bytes(written or 0)}) written "
                       f"and {free_text} when the write failed)")
        else:
            problem = (f"not enough disk space: {needed} bytes ({human_bytes(needed)}) needed"
                       f"{' for ' + what if what else ''}, {free_text}")
        super().__init__(f"{path}: {problem}. Fix: free space on that file system (or give snakemake a workdir on a "
                         "larger one with -d) and run the same command again; the temporary file was removed")
        self.errno = errno.ENOSPC


def human_bytes(n: float) -> str:
    """``n`` bytes in binary units, e.g. ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError


class CheckpointError(HcrlcError, ValueError):
    """A checkpoint does not belong to the model or config it is loaded into."""


class TrainingError(HcrlcError, RuntimeError):
    """Training cannot continue (non-finite loss, missing accelerator)."""
