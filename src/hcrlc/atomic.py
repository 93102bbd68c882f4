"""Atomic file output: write to a temporary sibling, then ``os.replace`` — readers never see half a file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success it replaces ``path``, on error it is removed.

    The temporary name keeps the suffix so libraries that pick a format from it (``.npy``, ``.parquet``) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file private (0600); results are shared on clusters, so apply the usual umask instead
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


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
