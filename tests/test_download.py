"""The download stage against a loopback HTTP server: archives of a tiny generated tree in the real layout, served
with Range support, a connection that drops mid-transfer, a server that ignores Range, wrong checksums, unsafe tar
members and a full disk."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import shutil
import socket
import tarfile
import threading
import urllib.parse
from collections import namedtuple
from pathlib import Path

import pytest

from conftest import REPO, snakemake
from hcrlc.data.index import build_listing
from hcrlc.data.synthetic import generate_trees
from hcrlc.download import DownloadError, archive_name, download_all, safe_extract
from hcrlc.errors import ConfigError, DataError

SCENES = [("spring", 1), ("fall", 3)]
RECORDS = {"sen12ms": "m1474000", "sen12mscr": "m1554803"}


def _tar_gz(root: Path, tops: list[Path]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for top in tops:
            tar.add(top, arcname=str(top.relative_to(root)))
    return buf.getvalue()


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """The generated trees and their archives, split as on mediaTUM: SEN12MS one archive per season and kind
    (``ROIs1158_spring_s1.tar.gz`` holds ``ROIs1158_spring/s1_1/``), SEN12MS-CR one per top folder; both records
    have an archive named ``ROIs1158_spring_s1.tar.gz``."""
    root = tmp_path_factory.mktemp("src")
    ms, cr = root / "SEN12MS", root / "SEN12MS-CR"
    generate_trees(ms, cr, scenes=SCENES, grid=2, seed=3, only_in_one_tree=0)
    files: dict[tuple[str, str], bytes] = {}
    for season_dir in sorted(ms.iterdir()):
        for kind in ("s1", "s2", "lc"):
            tops = sorted(season_dir.glob(f"{kind}_*"))
            files[("sen12ms", f"{season_dir.name}_{kind}.tar.gz")] = _tar_gz(ms, tops)
    for top in sorted(cr.iterdir()):
        files[("sen12mscr", f"{top.name}.tar.gz")] = _tar_gz(cr, [top])
    return ms, cr, files


Request = namedtuple("Request", "method name range")


class Handler(http.server.BaseHTTPRequestHandler):
    """``/s/<record>/download?path=/&files=<name>`` as on mediaTUM; honours ``Range: bytes=N-``."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output quiet
        pass

    def _lookup(self):
        parts = urllib.parse.urlsplit(self.path)
        record = parts.path.split("/")[2]
        dataset = {v: k for k, v in RECORDS.items()}[record]
        name = urllib.parse.parse_qs(parts.query)["files"][0]
        return name, self.server.files.get((dataset, name))

    def do_HEAD(self):
        name, data = self._lookup()
        self.server.log.append(Request("HEAD", name, None))
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()

    def do_GET(self):
        name, data = self._lookup()
        rng = self.headers.get("Range")
        self.server.log.append(Request("GET", name, rng))
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and not self.server.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        drop = self.server.drop_after.pop(name, None)  # only the first request of that file is cut short
        if drop is not None:
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@pytest.fixture
def server(trees):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files = dict(trees[2])
    httpd.log = []
    httpd.drop_after = {}
    httpd.ignore_range = False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def entries(server, only: str | None = None, **extra) -> list[dict]:
    return [
        {"url": f"{server.base}/s/{RECORDS[ds]}/download?path=/&files={name}", "dataset": ds, **extra}
        for (ds, name) in sorted(server.files)
        if only is None or name == only
    ]


def fetch_all(server, root, archives=None, **kw):
    return download_all(archives if archives is not None else entries(server), root, backoff_s=0.01, timeout=10,
                        progress=False, **kw)


def test_archive_name_from_mediatum_url():
    url = "https://dataserv.ub.tum.de/s/m1474000/download?path=/&files=ROIs1158_spring_s1.tar.gz"
    assert archive_name(url) == "ROIs1158_spring_s1.tar.gz"
    assert archive_name("https://example.org/a/b/ROIs1868_summer_s2.tar.gz") == "ROIs1868_summer_s2.tar.gz"
    with pytest.raises(ConfigError, match="file name"):
        archive_name("https://example.org/s/m1474000/download")


def test_full_download_gives_the_real_layout(server, trees, tmp_path):
    ms, cr, files = trees
    state = fetch_all(server, tmp_path)
    # every file of both trees, byte for byte, at the same relative path
    for src, dst in ((ms, tmp_path / "SEN12MS"), (cr, tmp_path / "SEN12MS-CR")):
        want = sorted(p.relative_to(src) for p in src.rglob("*.tif"))
        got = sorted(p.relative_to(dst) for p in dst.rglob("*.tif"))
        assert got == want and len(want) == 2 * 4 * 3
        assert all((src / p).read_bytes() == (dst / p).read_bytes() for p in want)
    listing, _ = build_listing(tmp_path / "SEN12MS", tmp_path / "SEN12MS-CR")
    reference, _ = build_listing(ms, cr)
    assert len(listing) == len(reference) == 8
    assert sorted(map(tuple, listing[["season", "scene", "patch"]].values.tolist())) == \
        sorted(map(tuple, reference[["season", "scene", "patch"]].values.tolist()))
    recorded = json.loads((tmp_path / "checksums.json").read_text())
    assert recorded == state and len(recorded) == len(files)
    for (ds, name), data in files.items():
        assert recorded[f"{ds}/{name}"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert recorded[f"{ds}/{name}"]["extracted"] is True
    assert not list(tmp_path.glob(".extract-*")) and not list(tmp_path.rglob("*.part"))

    # a rerun downloads nothing and re-verifies the recorded checksums
    server.log.clear()
    fetch_all(server, tmp_path)
    assert [r for r in server.log if r.method == "GET"] == []
    # an archive altered on disk is caught against checksums.json
    victim = tmp_path / "archives" / "sen12ms" / "ROIs1158_spring_s1.tar.gz"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksums.json") as err:
        fetch_all(server, tmp_path)
    assert str(victim) in str(err.value) and "delete" in str(err.value)


def test_interrupted_transfer_resumes_with_range(server, trees, tmp_path):
    name = "ROIs1158_spring_s2.tar.gz"
    data = server.files[("sen12mscr", name)]
    server.drop_after[name] = len(data) // 3
    state = fetch_all(server, tmp_path, entries(server, only=name)[1:])  # the SEN12MS-CR one
    gets = [r for r in server.log if r.method == "GET"]
    assert [g.range for g in gets] == [None, f"bytes={len(data) // 3}-"]
    assert state[f"sen12mscr/{name}"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "archives" / "sen12mscr" / name).read_bytes() == data
    assert (tmp_path / "SEN12MS-CR" / "ROIs1158_spring_s2" / "s2_1").is_dir()


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    name = "ROIs1970_fall_lc.tar.gz"
    data = server.files[("sen12ms", name)]
    server.drop_after[name] = len(data) // 2
    server.ignore_range = True
    state = fetch_all(server, tmp_path, entries(server, only=name))
    assert [r.range for r in server.log if r.method == "GET"] == [None, f"bytes={len(data) // 2}-"]
    assert state[f"sen12ms/{name}"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "archives" / "sen12ms" / name).read_bytes() == data


def test_wrong_sha256_fails_and_extracts_nothing(server, tmp_path):
    archives = entries(server, only="ROIs1158_spring_lc.tar.gz", sha256="0" * 64)
    with pytest.raises(DataError) as err:
        fetch_all(server, tmp_path, archives)
    msg = str(err.value)
    actual = hashlib.sha256(server.files[("sen12ms", "ROIs1158_spring_lc.tar.gz")]).hexdigest()
    assert "ROIs1158_spring_lc.tar.gz" in msg and "0" * 64 in msg and actual in msg and "delete" in msg
    assert not (tmp_path / "SEN12MS").exists() and not list(tmp_path.glob(".extract-*"))
    assert "sen12ms/ROIs1158_spring_lc.tar.gz" not in json.loads((tmp_path / "checksums.json").read_text()
                                                                if (tmp_path / "checksums.json").exists() else "{}")


@pytest.mark.parametrize("evil", ["../evil", "/abs/evil", "ok/../../evil"])
def test_unsafe_tar_members_are_refused(tmp_path, evil):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("ROIs1158_spring/s1_1/good.tif", evil):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(buf.getvalue())
    target = tmp_path / "out" / "SEN12MS"
    with pytest.raises(DataError, match="unsafe tar member") as err:
        safe_extract(archive, target, progress=False)
    assert repr(evil) in str(err.value)
    assert not target.exists() and not (tmp_path / "evil").exists() and not list((tmp_path / "out").iterdir())


def test_unsafe_symlink_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("ROIs1158_spring/link")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tar.addfile(info)
    (tmp_path / "l.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="unsafe tar member"):
        safe_extract(tmp_path / "l.tar.gz", tmp_path / "out" / "SEN12MS", progress=False)


def test_insufficient_disk_space_fails_before_downloading(server, tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    needed = 2 * sum(len(d) for d in server.files.values())
    with pytest.raises(DownloadError) as err:
        fetch_all(server, tmp_path)
    assert str(needed) in str(err.value) and "1000 bytes" in str(err.value)
    assert [r for r in server.log if r.method == "GET"] == []
    # sizes from the config are used without asking the server
    server.log.clear()
    archives = [{**e, "size": 10**6} for e in entries(server)]
    with pytest.raises(DownloadError, match=str(2 * 10**6 * len(archives))):
        fetch_all(server, tmp_path, archives)
    assert server.log == []


def test_extraction_checks_the_exact_unpacked_size_first(trees, tmp_path, monkeypatch):
    _, _, files = trees
    archive = tmp_path / "ROIs1158_spring_s2.tar.gz"
    archive.write_bytes(files[("sen12ms", archive.name)])
    with tarfile.open(archive) as tar:
        unpacked = sum(m.size for m in tar.getmembers() if m.isfile())
    assert unpacked > len(files[("sen12ms", archive.name)])  # more than the archive: why the early check is a floor
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=unpacked - 1))
    with pytest.raises(DownloadError) as err:
        safe_extract(archive, tmp_path / "out" / "SEN12MS", progress=False)
    assert str(unpacked) in str(err.value) and archive.name in str(err.value)
    assert not (tmp_path / "out" / "SEN12MS").exists()
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=unpacked))
    assert safe_extract(archive, tmp_path / "out" / "SEN12MS", progress=False) > 0


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        download_all([], tmp_path)
    with pytest.raises(ConfigError, match="dataset"):
        download_all([{"url": "http://x/a.tar.gz", "dataset": "other"}], tmp_path)
    with pytest.raises(ConfigError, match="sha256"):
        download_all([{"url": "http://x/a.tar.gz", "dataset": "sen12ms", "sha256": "abc"}], tmp_path)


def test_http_404_is_a_clear_error(server, tmp_path):
    archives = [{"url": f"{server.base}/s/m1474000/download?path=/&files=nope.tar.gz", "dataset": "sen12ms",
                 "size": 1}]
    with pytest.raises(DownloadError, match="HTTP 404.*download.archives"):
        fetch_all(server, tmp_path, archives)


@pytest.mark.slow
def test_download_rule(server, tmp_path):
    """`snakemake download` fetches into download.dir, writes the flag, and is not part of `all`."""
    overlay = tmp_path / "download.yaml"
    overlay.write_text(json.dumps({"download": {"dir": "raw", "archives": entries(server), "retries": 1}}))
    work = tmp_path / "work"
    dry = snakemake(work, "-n", "--configfile", str(REPO / "configs" / "smoke.yaml"), str(overlay))
    out = dry.stdout + dry.stderr
    assert "Job stats:" in out and "download" not in out.split("Job stats:")[1].split("Reasons:")[0].split()
    snakemake(work, "download", "--configfile", str(REPO / "configs" / "smoke.yaml"), str(overlay))
    flag = json.loads((work / "raw" / ".complete").read_text())
    assert flag["sen12ms"].endswith("SEN12MS") and len(flag["archives"]) == len(server.files)
    assert (work / "results" / "logs" / "download.log").read_text().count("downloaded") == len(server.files)
    listing, _ = build_listing(work / "raw" / "SEN12MS", work / "raw" / "SEN12MS-CR")
    assert len(listing) == 8


def test_without_keeping_archives_a_rerun_fetches_nothing(server, tmp_path):
    archives = entries(server, only="ROIs1158_spring_lc.tar.gz")
    state = fetch_all(server, tmp_path, archives, keep_archives=False)
    assert state["sen12ms/ROIs1158_spring_lc.tar.gz"]["extracted"] is True
    assert not (tmp_path / "archives" / "sen12ms" / "ROIs1158_spring_lc.tar.gz").exists()
    assert (tmp_path / "SEN12MS" / "ROIs1158_spring" / "lc_1").is_dir()
    server.log.clear()
    fetch_all(server, tmp_path, archives, keep_archives=False)
    assert server.log == []
