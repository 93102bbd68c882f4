"""Download and unpack the SEN12MS (mediaTUM m1474000) and SEN12MS-CR (mediaTUM m1554803) archives.

Everything here is driven by the config's ``download`` section (URLs live in the config, never in code):

* **resume**: an archive is written to ``<name>.part`` and renamed when complete; an interrupted transfer continues
  with an HTTP ``Range`` request (a server that ignores ``Range`` and answers 200 makes us start that file over);
* **checksums**: sha256 is computed on completion, checked against the config's ``sha256`` when given, recorded in
  ``<dir>/checksums.json`` and re-checked against the recorded value on every rerun;
* **safe extraction**: :mod:`tarfile` with ``filter="data"``; absolute and ``..`` members are refused up front; an
  archive is unpacked into a temporary folder beside the tree and its entries are then renamed into place, so a
  failed or refused archive leaves nothing in the tree;
* **disk space**: before any transfer, (archive + extracted) = 2 × the sum of known sizes (config ``size`` or the
  HTTP ``Content-Length`` of a HEAD request) is compared with the free space, and the run stops early naming both;
  before each extraction, the exact unpacked size (from the tar headers) is checked against the free space again.

Layout under ``dir``::

    archives/sen12ms/ROIs1158_spring_s1.tar.gz      (archives/sen12mscr/... : the two records share file names)
    SEN12MS/ROIs1158_spring/s1_1/...                -> data.sen12ms
    SEN12MS-CR/ROIs1158_spring_s1/s1_1/...          -> data.sen12mscr
    checksums.json
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from hcrlc.atomic import write_json
from hcrlc.errors import ConfigError, DataError, HcrlcError, human_bytes

log = logging.getLogger(__name__)

#: dataset key of the config -> folder under ``download.dir`` holding the extracted tree
DATASET_DIRS = {"sen12ms": "SEN12MS", "sen12mscr": "SEN12MS-CR"}
CHECKSUMS = "checksums.json"
CHUNK = 1 << 20
USER_AGENT = "hcrlc-download/1 (+urllib)"


class DownloadError(HcrlcError, RuntimeError):
    """A transfer failed for good, or there is not enough disk space."""


@dataclass(frozen=True)
class Archive:
    """One archive of the config's ``download.archives``."""

    url: str
    dataset: str
    sha256: str | None = None
    size: int | None = None

    @property
    def name(self) -> str:
        return archive_name(self.url)

    @property
    def key(self) -> str:
        """Key in ``checksums.json`` and path under ``<dir>/archives``: ``<dataset>/<name>``."""
        return f"{self.dataset}/{self.name}"


def archive_name(url: str) -> str:
    """File name of an archive URL: the ``files=`` query value (mediaTUM share links), else the last path part."""
    parts = urllib.parse.urlsplit(url)
    files = urllib.parse.parse_qs(parts.query).get("files")
    name = files[0] if files else PurePosixPath(urllib.parse.unquote(parts.path)).name
    name = PurePosixPath(name).name
    if not name or name in (".", "..") or name == "download":
        raise ConfigError(f"download.archives: cannot tell the file name of {url!r}; use a URL ending in the file name "
                          "or with a `files=<name>` query")
    return name


def parse_archives(entries: Iterable[Mapping[str, Any]]) -> list[Archive]:
    """Archives from the config list (``{url, dataset, sha256?, size?}``), checked for duplicates."""
    archives = []
    for i, entry in enumerate(entries):
        unknown = set(entry) - {"url", "dataset", "sha256", "size"}
        if unknown or "url" not in entry or "dataset" not in entry:
            raise ConfigError(f"download.archives[{i}]: needs `url` and `dataset` (sen12ms|sen12mscr), optionally "
                              f"`sha256` and `size`; got keys {sorted(entry)}")
        if entry["dataset"] not in DATASET_DIRS:
            raise ConfigError(f"download.archives[{i}].dataset: {entry['dataset']!r} is not one of "
                              f"{sorted(DATASET_DIRS)}")
        sha = entry.get("sha256")
        if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(sha)):
            raise ConfigError(f"download.archives[{i}].sha256: {sha!r} is not 64 hex digits (or null)")
        archives.append(Archive(str(entry["url"]), entry["dataset"], sha.lower() if sha else None, entry.get("size")))
    keys = [a.key for a in archives]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ConfigError(f"download.archives: listed more than once: {dupes}")
    return archives


# --- state ---------------------------------------------------------------------------------------------------------

def _load_state(root: Path) -> dict[str, dict]:
    path = root / CHECKSUMS
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e})", "delete it and rerun: every archive is then re-hashed") from e


def _save_state(root: Path, state: dict[str, dict]) -> None:
    write_json(dict(sorted(state.items())), root / CHECKSUMS)


def sha256_file(path: str | Path, progress: bool = False) -> str:
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"sha256 {path.name}",
                                    disable=not progress, mininterval=2) as bar:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


# --- HTTP ----------------------------------------------------------------------------------------------------------

def remote_size(url: str, timeout: float = 60) -> int | None:
    """``Content-Length`` of a HEAD request, or None when the server does not say (or HEAD fails)."""
    req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            return int(length) if length is not None else None
    except (urllib.error.URLError, HTTPException, OSError, ValueError) as e:
        log.warning("HEAD %s failed (%s); its size is unknown", url, e)
        return None


def fetch(url: str, path: str | Path, *, timeout: float = 60, retries: int = 5, backoff_s: float = 2.0,
          progress: bool = True) -> Path:
    """Download ``url`` to ``path`` through ``<path>.part``, resuming with HTTP Range after an interruption.

    A 206 answer whose range starts where the partial file ends is appended; a 200 answer (the server ignored
    Range) restarts the file from zero. Each failed attempt (connection lost, short body, timeout, HTTP 5xx) is
    retried up to ``retries`` times, continuing from the bytes already on disk.
    """
    path = Path(path)
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": USER_AGENT}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                mode = "wb"
                if have and resp.status == 206:
                    match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
                    if match is None or int(match[1]) != have:
                        raise DownloadError(f"{url}: the server answered Range bytes={have}- with Content-Range "
                                            f"{resp.headers.get('Content-Range')!r}; delete {part} and rerun")
                    mode = "ab"
                    log.info("resuming %s at byte %d", path.name, have)
                elif have:
                    log.warning("%s: the server ignored the Range request (HTTP %d); restarting from zero",
                                path.name, resp.status)
                    have = 0
                length = resp.headers.get("Content-Length")
                expected = int(length) if length is not None else None
                written = 0
                with part.open(mode) as f, tqdm(total=None if expected is None else have + expected, initial=have,
                                                unit="B", unit_scale=True, unit_divisor=1024, desc=path.name,
                                                disable=not progress, mininterval=2) as bar:
                    while chunk := resp.read(CHUNK):
                        f.write(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
                if expected is not None and written != expected:
                    raise HTTPException(f"connection closed after {written} of {expected} bytes")
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # nothing left to send: the .part file may already be whole, or is too long
                log.warning("%s: HTTP 416 for bytes=%d-; restarting from zero", path.name, have)
                part.unlink()
            elif e.code < 500 and e.code != 429:
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}. Fix: check the URL in download.archives "
                                    "(see the record's page on mediaTUM)") from e
            failures += 1
            if failures > retries:
                raise DownloadError(f"{url}: HTTP {e.code} after {retries} retries; rerun to continue") from e
            time.sleep(min(backoff_s * 2 ** (failures - 1), 60))
        except (urllib.error.URLError, HTTPException, OSError) as e:
            failures += 1
            kept = part.stat().st_size if part.exists() else 0
            if failures > retries:
                raise DownloadError(f"{url}: transfer failed {failures} times ({e}); {kept} bytes are kept in {part} "
                                    "and the next run continues from there") from e
            log.warning("%s: transfer interrupted (%s) at byte %d; retry %d/%d", path.name, e, kept, failures, retries)
            time.sleep(min(backoff_s * 2 ** (failures - 1), 60))
        else:
            os.replace(part, path)
            log.info("downloaded %s (%s)", path, human_bytes(path.stat().st_size))
            return path


# --- disk space ----------------------------------------------------------------------------------------------------

def check_disk_space(archives: list[Archive], root: str | Path, *, timeout: float = 60, factor: int = 2) -> int:
    """Fail early unless the free space under ``root`` holds ``factor`` × the archive sizes still to fetch
    (2 = archive + extracted).

    Sizes come from the config's ``size`` or a HEAD request; bytes already in ``.part`` files are subtracted.
    Returns the number of bytes needed.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    needed, unknown = 0, []
    for a in archives:
        size = a.size if a.size is not None else remote_size(a.url, timeout)
        if size is None:
            unknown.append(a.key)
            continue
        part = root / "archives" / a.dataset / (a.name + ".part")
        have = part.stat().st_size if part.exists() else 0
        needed += max(size - have, 0) + (factor - 1) * size
    if unknown:
        log.warning("size unknown for %d archive(s) (%s): the disk-space check counts only the others",
                    len(unknown), ", ".join(unknown))
    _require_free_space(root, needed, "the archives" + (" plus their extracted contents" if factor > 1 else ""),
                        "free space, or set download.dir to a larger disk")
    return needed


def _require_free_space(where: Path, needed: int, what: str, fix: str) -> None:
    """Stop with both byte counts unless ``needed`` bytes are free under ``where``."""
    free = shutil.disk_usage(where).free
    log.info("disk space: %s needed for %s, %s free under %s", human_bytes(needed), what, human_bytes(free), where)
    if needed > free:
        raise DownloadError(f"not enough disk space under {where}: {needed} bytes ({human_bytes(needed)}) needed for "
                            f"{what}, {free} bytes ({human_bytes(free)}) free. Fix: {fix}")


# --- extraction ----------------------------------------------------------------------------------------------------

_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # Python >= 3.10.12 / 3.11.4
_FILTER_ERRORS = (tarfile.FilterError,) if _HAS_DATA_FILTER else ()


def _unsafe(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return p.is_absolute() or bool(re.match(r"^[A-Za-z]:", name)) or ".." in p.parts


def safe_extract(archive: str | Path, target: str | Path, progress: bool = True) -> int:
    """Unpack ``archive`` into ``target`` (merged with what is there); returns the number of members.

    Absolute and ``..`` member names (and links pointing so) are refused before anything is written; every
    member also passes :func:`tarfile.data_filter`. Extraction goes to a temporary folder beside ``target``;
    only a completely extracted archive is renamed into place.
    """
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fix = "do not use this archive: delete it, check download.archives and rerun"
    tmp = Path(tempfile.mkdtemp(prefix=f".extract-{archive.name}-", dir=target.parent))
    count = 0
    try:
        with tarfile.open(archive, "r:*") as tar, tqdm(desc=f"extract {archive.name}", unit="file",
                                                       disable=not progress, mininterval=2) as bar:
            members = tar.getmembers()
            # exact: the bytes this archive unpacks to, against the free space where it unpacks (the check before
            # the transfers had to assume extracted = archive size; compressed GeoTIFFs unpack larger)
            _require_free_space(target.parent, sum(m.size for m in members if m.isfile()),
                                f"the files of {archive} (nothing was extracted)",
                                "free space (download.keep_archives: false removes each archive once unpacked) and "
                                "rerun; the download is not repeated")
            for m in members:
                if _unsafe(m.name) or ((m.issym() or m.islnk()) and _unsafe(m.linkname)):
                    raise DataError(archive, f"unsafe tar member {m.name!r}"
                                             f"{' -> ' + repr(m.linkname) if m.linkname else ''} "
                                             "(absolute path or '..'); nothing was extracted", fix)
                if not _HAS_DATA_FILTER and not (m.isfile() or m.isdir()):
                    raise DataError(archive, f"tar member {m.name!r} is a link or special file, refused on this "
                                             "Python (no tarfile data filter)", "use Python >= 3.10.12")
            for m in members:
                try:
                    tar.extract(m, tmp, **({"filter": "data"} if _HAS_DATA_FILTER else {}))
                except _FILTER_ERRORS as e:
                    raise DataError(archive, f"unsafe tar member {m.name!r} ({e}); nothing was extracted", fix) from e
                count += 1
                bar.update(1)
        target.mkdir(exist_ok=True)
        _merge_move(tmp, target)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(archive, f"cannot extract ({e})", "delete the archive and rerun to download it again") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("extracted %d members of %s into %s", count, archive.name, target)
    return count


def _merge_move(src: Path, dst: Path) -> None:
    """Rename every entry of ``src`` into ``dst``, descending into folders that already exist there."""
    for entry in sorted(src.iterdir()):
        out = dst / entry.name
        if entry.is_dir() and not entry.is_symlink() and out.is_dir() and not out.is_symlink():
            _merge_move(entry, out)
        elif out.is_dir() and not out.is_symlink():
            raise DataError(out, f"is a folder but the archive holds a file {entry.name!r} here",
                            "remove it and rerun")
        else:
            os.replace(entry, out)


# --- the whole job -------------------------------------------------------------------------------------------------

def _verify(path: Path, a: Archive, recorded: str | None, progress: bool) -> str:
    actual = sha256_file(path, progress)
    for expected, source in ((a.sha256, "download.archives (config)"), (recorded, CHECKSUMS + " (earlier run)")):
        if expected is not None and actual != expected:
            raise DataError(path, f"sha256 mismatch: expected {expected} from {source}, got {actual}",
                            f"delete {path} and rerun to download it again")
    return actual


def download_all(entries: Iterable[Mapping[str, Any]], root: str | Path, *, extract: bool = True,
                 keep_archives: bool = True, timeout: float = 60, retries: int = 5, backoff_s: float = 2.0,
                 progress: bool = True) -> dict[str, dict]:
    """Fetch, verify and unpack every archive of ``entries`` (the config's ``download.archives``) under ``root``.

    Archives already downloaded are re-hashed against ``checksums.json``; archives already extracted are not
    extracted again. Returns the ``checksums.json`` content: ``<dataset>/<name>`` → ``{url, dataset, sha256,
    size, extracted}``.
    """
    root = Path(root)
    archives = parse_archives(entries)
    if not archives:
        raise ConfigError("download.archives is empty: list the SEN12MS and SEN12MS-CR archives "
                          "(configs/paper.yaml has them: --configfile configs/paper.yaml)")
    root.mkdir(parents=True, exist_ok=True)
    state = _load_state(root)
    todo = [a for a in archives
            if not (root / "archives" / a.key).exists() and not state.get(a.key, {}).get("extracted")]
    check_disk_space(todo, root, timeout=timeout, factor=2 if extract else 1)
    for i, a in enumerate(archives, 1):
        path = root / "archives" / a.key
        rec = state.get(a.key, {})
        log.info("[%d/%d] %s", i, len(archives), a.key)
        if path.exists():
            sha = _verify(path, a, rec.get("sha256"), progress)
            log.info("%s present, sha256 %s verified", a.key, sha)
        elif rec.get("extracted"):
            if a.sha256 is not None and rec.get("sha256") != a.sha256:
                raise DataError(root / CHECKSUMS, f"{a.key} was extracted from an archive with sha256 "
                                f"{rec.get('sha256')}, but download.archives expects {a.sha256}",
                                f"delete {root / DATASET_DIRS[a.dataset]} and the {a.key} entry of {CHECKSUMS}, "
                                "then rerun")
            log.info("%s already extracted (archive removed; verified when it was downloaded)", a.key)
            continue
        else:
            fetch(a.url, path, timeout=timeout, retries=retries, backoff_s=backoff_s, progress=progress)
            sha = _verify(path, a, None, progress)
        size = path.stat().st_size
        if a.size is not None and size != a.size:
            raise DataError(path, f"size {size} bytes, but download.archives says {a.size}",
                            f"delete {path} and rerun, or correct `size` in the config")
        rec = {"url": a.url, "dataset": a.dataset, "sha256": sha, "size": size,
               "extracted": bool(rec.get("extracted") and rec.get("sha256") == sha)}
        state[a.key] = rec
        _save_state(root, state)
        if extract and not rec["extracted"]:
            safe_extract(path, root / DATASET_DIRS[a.dataset], progress)
            rec["extracted"] = True
            _save_state(root, state)
        if extract and not keep_archives:
            path.unlink()
            log.info("removed %s (download.keep_archives: false)", path)
    return state
