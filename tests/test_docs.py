"""The README and docs/: every relative link and image resolves (``#anchors`` included, by GitHub's heading slugs),
every docs page is reachable from README.md and docs/ARCHITECTURE.md, the README stays a short landing page whose
first two code blocks are the demo and the test command that ``.ci/run`` runs, and ``docs/images/update.py``
makes the README's figures from a run's ``results/figures``."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from conftest import REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
UPDATE = DOCS / "images" / "update.py"
PAGES = sorted(DOCS.glob("*.md"))
#: the figures the README must show, made by docs/images/update.py
README_FIGURES = ("fig1", "fig3", "fig4", "curves")

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# [text](target) and ![alt](target), an optional "title" after the target; text may hold one level of [...]
_MD_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def prose(text: str) -> str:
    """Markdown without code blocks, code spans and comments: what a link can be in."""
    return _CODE_SPAN.sub("", _FENCE.sub("", _HTML_COMMENT.sub("", text)))


def links(text: str) -> list[str]:
    body = prose(text)
    return _MD_LINK.findall(body) + _HTML_LINK.findall(body)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every ``#anchor`` of a markdown page; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links and images of ``page`` whose file or anchor does not exist, each with the reason."""
    broken = []
    for target in links(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
            continue
        path_part, _, anchor = unquote(target).partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{anchor} in {resolved.name}")
    return broken


def code_blocks(text: str) -> list[str]:
    return [m.group(0).split("\n", 1)[1].rsplit("\n", 1)[0].strip() for m in _FENCE.finditer(text)]


# --- the link checker itself ---------------------------------------------------------------------------------------


def test_slugs_follow_github():
    assert slug("Table 2 (synthetic data — not comparable to the paper)") == (
        "table-2-synthetic-data--not-comparable-to-the-paper")
    assert slug("Paper scale: disk, time, GPU-hours") == "paper-scale-disk-time-gpu-hours"
    assert slug("What `snakemake_report` shows") == "what-snakemake_report-shows"
    assert slug("See [the docs](docs/x.md)") == "see-the-docs"


def test_the_checker_finds_broken_links_and_ignores_code(tmp_path):
    (tmp_path / "img.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text("# Top\n## Same\n## Same\n"
                    "[ok](img.png) ![ok](img.png \"title\") [ok](#top) [ok](#same-1) [ok](https://example.org/x)\n"
                    "[gone](missing.md) ![gone](images/none.png) [bad anchor](#nowhere) [bad](page.md#same-2)\n"
                    "<img src=\"also_missing.png\">\n"
                    "`[not a link](code.md)`\n```\n[not a link](block.md)\n```\n<!-- [hidden](comment.md) -->\n")
    found = broken_links(page)
    assert [b.split(":")[0] for b in found] == ["missing.md", "images/none.png", "#nowhere", "page.md#same-2",
                                                "also_missing.png"], found


# --- README.md and docs/ -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_and_image_resolves(page):
    assert links(page.read_text()), f"{page} has no links at all: is the parser still reading it?"
    assert broken_links(page) == []


@pytest.mark.parametrize("index", [README, DOCS / "ARCHITECTURE.md"], ids=["README.md", "ARCHITECTURE.md"])
def test_every_docs_page_is_linked_from_readme_and_architecture(index):
    linked = {(index.parent / unquote(t).partition("#")[0]).resolve() for t in links(index.read_text())}
    unlinked = [p.name for p in PAGES if p != index and p.resolve() not in linked]
    assert unlinked == [], f"{index.name} does not link {unlinked}"


def test_readme_is_a_short_landing_page_with_the_demo_figures():
    text = README.read_text()
    assert len(text.splitlines()) <= 200, "README.md is over 200 lines: move the detail to a page in docs/"
    images = {Path(t).stem for t in links(text) if t.startswith("docs/images/")}
    assert set(README_FIGURES) <= images, images
    assert "synthetic" in text.split("```", 1)[0], "the paragraph before the first command names the synthetic data"


def test_readme_first_code_blocks_are_the_demo_and_the_ci_test_command():
    demo, tests = code_blocks(README.read_text())[:2]
    assert demo.endswith("&& snakemake --cores all"), demo
    install, run = (step.strip() for step in tests.split("&&"))
    ci = (REPO / ".ci" / "run").read_text()
    # .ci/run runs the README's command: the same install arguments and the same pytest invocation
    assert install == "pip install torch==2.13.0 -e '.[test]'", install
    assert re.search(r"^python3 -m pip install -q torch==2\.13\.0 -e '\.\[test\]'", ci, re.MULTILINE)
    assert run == "python -m pytest -q", run
    assert re.search(r"^python3 -m pytest -q\b", ci, re.MULTILINE)


# --- docs/images/update.py -----------------------------------------------------------------------------------------


def fake_figure(path: Path, width_in: float, dpi: int = 150) -> None:
    """A matplotlib figure with a red and a blue half, saved as results/figures/ does (RGBA PNG)."""
    fig = Figure(figsize=(width_in, width_in / 2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(np.array([[[1.0, 0, 0], [0, 0, 1.0]]]), aspect="auto", interpolation="nearest")
    ax.set_axis_off()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)


def update_module():
    spec = importlib.util.spec_from_file_location("update_images", UPDATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_update(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(UPDATE), *args], check=False, capture_output=True, text=True,
                          timeout=120)


def test_update_writes_small_readable_pngs(tmp_path):
    figures = tmp_path / "work" / "results" / "figures"
    for name, width_in in zip(README_FIGURES, (7.5, 20, 6.5, 4), strict=True):
        fake_figure(figures / f"{name}.png", width_in)
    out = tmp_path / "images"
    proc = run_update(str(tmp_path / "work"), "--out", str(out), "--max-width", "1200")
    assert proc.returncode == 0, proc.stderr
    for name, width_in in zip(README_FIGURES, (7.5, 20, 6.5, 4), strict=True):
        with Image.open(out / f"{name}.png") as image:
            assert image.format == "PNG" and image.mode == "P"
            # wide figures scaled down to the limit, small ones kept as they are (600 px: never scaled up)
            assert image.width == min(1200, round(width_in * 150)), (name, image.size)
            assert abs(image.width / image.height - 2) < 0.01
            rgb = np.asarray(image.convert("RGB"), dtype=int)
        # the left half is still red, the right half blue
        w = rgb.shape[1]
        assert (np.abs(rgb[:, : w // 2 - 5] - [255, 0, 0]).max(axis=-1) < 20).mean() > 0.99
        assert (np.abs(rgb[:, w // 2 + 5:] - [0, 0, 255]).max(axis=-1) < 20).mean() > 0.99
    assert (out / "curves.png").stat().st_size < 20_000  # a palette PNG of flat colours is tiny
    assert f"{out / 'fig3.png'}: 1200 x 600 px" in proc.stdout


def test_update_with_a_figure_missing_names_it_and_writes_nothing(tmp_path):
    figures = tmp_path / "work" / "results" / "figures"
    for name in ("fig1", "fig3", "curves"):
        fake_figure(figures / f"{name}.png", 4)
    out = tmp_path / "images"
    proc = run_update(str(tmp_path / "work"), "--out", str(out))
    assert proc.returncode == 1
    assert str(figures / "fig4.png") in proc.stderr and "snakemake -d" in proc.stderr, proc.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow
def test_update_on_the_smoke_run(smoke_run, tmp_path):
    max_width = update_module().MAX_WIDTH
    proc = run_update(str(smoke_run), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for name in README_FIGURES:
        with Image.open(tmp_path / f"{name}.png") as image, \
                Image.open(smoke_run / "results" / "figures" / f"{name}.png") as original:
            assert image.width == min(original.width, max_width)
