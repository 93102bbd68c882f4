"""Atomic file output: write to a temporary sibling, then ``os.replace`` — readers never see half a file.

Faults leave no debris: a failed write removes its temporary file, a killed one (SIGKILL, node crash) leaves it
behind until the same output is written again, which removes it first; a full disk is an error naming the output,
the bytes needed (when known) and the bytes free, never a SIGBUS from a memory-mapped write.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hcrlc.errors import DiskFullError

log = logging.getLogger(__name__)

#: the random part of a ``tempfile.mkstemp`` name: 8 characters of ``tempfile._RandomNameSequence``
_MKSTEMP_RANDOM = r"[a-z0-9_]{8}"
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
#: numpy and torch report a full disk without an errno: numpy by these words (it preallocates), torch only by a
#: failed write, so a write that failed while less than _NEARLY_FULL was free counts as a full disk too
_NO_SPACE_WORDS = ("No space left on device", "Not enough free space", "Disk quota exceeded")
_NEARLY_FULL = 1 << 20


def _temp_prefix_suffix(path: Path) -> tuple[str, str]:
    return f".{path.stem}.", path.suffix


def stale_temp_files(path: str | Path) -> list[Path]:
    """Temporary siblings of ``path`` left by an :func:`atomic_output` that was killed before it could clean up."""
    path = Path(path)
    prefix, suffix = _temp_prefix_suffix(path)
    pattern = re.compile(re.escape(prefix) + _MKSTEMP_RANDOM + re.escape(suffix) + "$")
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if pattern.match(p.name) and p.is_file())


def remove_stale_temp_files(path: str | Path) -> None:
    """Delete what :func:`stale_temp_files` finds. Safe in the workflow: Snakemake runs one job per output."""
    for stale in stale_temp_files(path):
        log.info("removing %s, left by an earlier write of %s that was killed", stale, Path(path).name)
        stale.unlink(missing_ok=True)


def _disk_full(exc: BaseException, where: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return True
    if not isinstance(exc, Exception):
        return False  # KeyboardInterrupt, SystemExit
    if any(words in str(exc) for words in _NO_SPACE_WORDS):
        return True
    try:
        return shutil.disk_usage(where).free < _NEARLY_FULL
    except OSError:
        return False


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success it replaces ``path``, on error it is removed.

    The temporary name keeps the suffix so libraries that pick a format from it (``.npy``, ``.parquet``) still work.
    Temporary files of earlier, killed writes of ``path`` are removed first. A write that fails on a full disk
    raises :class:`DiskFullError` naming ``path`` and the free space.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path)
    prefix, suffix = _temp_prefix_suffix(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file private (0600); results are shared on clusters, so apply the usual umask instead
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except DiskFullError:
        tmp_path.unlink(missing_ok=True)
        raise
    except BaseException as exc:
        # measured before the temporary file gives its space back
        full = _disk_full(exc, path.parent)
        if full:
            free = shutil.disk_usage(path.parent).free
            written = tmp_path.stat().st_blocks * 512 if tmp_path.exists() else 0
        tmp_path.unlink(missing_ok=True)
        if full:
            raise DiskFullError(path, free, written=written) from exc
        raise


def require_free_space(where: str | Path, needed: int, path: str | Path, what: str = "") -> None:
    """Raise :class:`DiskFullError` for ``path`` unless ``needed`` bytes are free on the file system of ``where``."""
    free = shutil.disk_usage(where).free
    if needed > free:
        raise DiskFullError(path, free, needed, what)


def reserve_space(tmp: str | Path, nbytes: int, path: str | Path) -> None:
    """Allocate the first ``nbytes`` of the file ``tmp`` on disk now, for the output ``path``.

    Writes through a memory map (``np.lib.format.open_memmap``) into a sparse file allocate blocks lazily; on a full
    disk the kernel can only answer with SIGBUS, which kills the process without a word. After this call those
    writes cannot run out of space, and a full disk is a :class:`DiskFullError` naming ``path`` and both byte
    counts. Where the file system cannot preallocate, the free space is compared instead.
    """
    fallocate = getattr(os, "posix_fallocate", None)  # absent on macOS
    fd = os.open(tmp, os.O_RDWR)
    try:
        if fallocate is not None:
            try:
                fallocate(fd, 0, nbytes)
                return
            except OSError as exc:
                if exc.errno in _NO_SPACE:
                    raise DiskFullError(path, shutil.disk_usage(Path(tmp).parent).free, nbytes) from exc
                if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
        require_free_space(Path(tmp).parent, nbytes - os.fstat(fd).st_blocks * 512, path)
    finally:
        os.close(fd)


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_npz(path: str | Path, **arrays: Any) -> None:
    """``np.savez`` of ``arrays`` (uncompressed) to ``path``, atomically."""
    import numpy as np  # only the writers of arrays need it

    # a file object: np.savez would append ".npz" to the temporary name
    with atomic_output(path) as tmp, tmp.open("wb") as f:
        np.savez(f, **arrays)
