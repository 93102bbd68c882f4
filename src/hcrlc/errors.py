"""Project exception hierarchy. Every message names the offending file or key and says how to fix it."""

from __future__ import annotations

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


class CheckpointError(HcrlcError, ValueError):
    """A checkpoint does not belong to the model or config it is loaded into."""


class TrainingError(HcrlcError, RuntimeError):
    """Training cannot continue (non-finite loss, missing accelerator)."""
