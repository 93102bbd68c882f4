"""Send a job's logging and progress bars to its Snakemake ``log:`` file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def job_log(path: str | Path | None, level: int = logging.INFO) -> Iterator[None]:
    """Route ``logging`` and stderr (where tqdm draws) into ``path`` for the duration of a job.

    Exceptions are logged with their traceback before they propagate, so the log file says why a job failed.
    """
    if path is None:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(level)
        old_stderr = sys.stderr
        sys.stderr = stream
        try:
            yield
        except BaseException:
            logging.getLogger("hcrlc").exception("job failed")
            raise
        finally:
            sys.stderr = old_stderr
            root.removeHandler(handler)
