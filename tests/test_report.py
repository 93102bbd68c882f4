"""The HTML report of the smoke run, opened in a real headless Chromium: Table 1, Table 2 and every figure the
workflow marks with ``report(...)`` are reachable through the report app's own navigation (sidebar category ->
eye icon), figures render, and each caption from ``workflow/report/*.rst`` is shown with its item.

Needs the ``playwright`` Python package (the ``test`` extra) and a Chromium binary (Debian: ``apt-get install
chromium``; ``.ci/run`` installs it). No browser is ever downloaded: ``$CHROMIUM`` or ``/usr/bin/chromium`` is used.
Without either the module is skipped, unless ``HCRLC_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that an error.
Set ``HCRLC_REPORT_SCREENSHOTS=<dir>`` to keep a copy of the screenshots (they always land in the test's tmp dir).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from conftest import REPO, snakemake

REQUIRE_BROWSER = os.environ.get("HCRLC_REQUIRE_BROWSER", "") not in ("", "0")


def _missing(reason: str) -> None:
    if REQUIRE_BROWSER:
        raise RuntimeError(f"HCRLC_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(reason, allow_module_level=True)


try:
    from playwright import sync_api
except ImportError:
    _missing("the playwright package is not installed (pip install -e '.[test]')")


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = _chromium()
if CHROMIUM is None:
    _missing("no Chromium binary ($CHROMIUM, /usr/bin/chromium or chromium on PATH); Debian: apt-get install chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
pytestmark = pytest.mark.slow
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: what must be in the report whatever else the rules declare
REQUIRED = {"Tables": {"table1.csv", "table1.html", "table2.csv", "table2.html", "claims.csv", "claims.html"},
            "Figures": {"fig1.png", "fig3.png", "fig4.png", "curves.png"}}
REPORT_CALL = re.compile(r'report\(\s*"(?P<path>[^"]+)",\s*caption="(?P<caption>[^"]+)",\s*'
                         r'category="(?P<category>[^"]+)"')


def declared_report_items() -> dict[str, dict[str, tuple[str, Path]]]:
    """category -> file name -> (output path, caption file), read from every ``report(...)`` in the rules."""
    items: dict[str, dict[str, tuple[str, Path]]] = {}
    for rules in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for m in REPORT_CALL.finditer(rules.read_text()):
            caption = (rules.parent / m["caption"]).resolve()
            items.setdefault(m["category"], {})[Path(m["path"]).name] = (m["path"], caption)
    return items


ITEMS = declared_report_items()


def test_the_rules_declare_the_required_report_items():
    # guards the parser above: a reformatted report(...) call must not silently shrink what is checked
    for category, names in REQUIRED.items():
        assert names <= set(ITEMS.get(category, {})), (category, ITEMS.get(category))
    for category in ITEMS.values():
        for _path, caption in category.values():
            assert caption.is_file(), caption


def squash(text: str) -> str:
    return " ".join(text.split())


def caption_text(rst: Path) -> str:
    """The caption as the reader sees it: reStructuredText inline markup dropped, whitespace collapsed."""
    text = rst.read_text()
    text = re.sub(r"``(.+?)``", r"\1", text)
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"\*(.+?)\*", r"\1", text)
    return squash(text)


def assert_real_picture(path: Path, min_bytes: int = 20_000) -> None:
    """A PNG screenshot that is not blank: big enough, many colours, no colour covering (almost) everything."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > min_bytes, (path, len(data))
    pixels = (imread(path)[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    assert len(colours) > 64, (path, len(colours))
    assert counts.max() / len(pixels) < 0.98, (path, counts.max() / len(pixels))


@pytest.fixture(scope="module")
def report(smoke_run) -> Path:
    path = smoke_run / "results" / "report.html"
    snakemake(smoke_run, "--report", str(path))
    assert path.is_file() and path.stat().st_size > 100_000
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, report):
    """The report opened from disk, offline (anything not file:/data:/blob: is refused), JS errors collected."""
    context = browser.new_context(viewport={"width": 1920, "height": 1200}, accept_downloads=True)
    context.set_default_timeout(60_000)  # two shared cores
    external, errors = [], []
    context.route(re.compile(r"^(?!(file|data|blob):)"),
                  lambda route: (external.append(route.request.url), route.abort()))
    pg = context.new_page()
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(report.as_uri())
    pg.wait_for_load_state("load")
    yield pg
    context.close()
    assert not errors, f"JavaScript errors in the report: {errors} (refused requests: {external})"


def sidebar(pg):
    return pg.locator("nav").first  # the first <nav> is the sidebar, the breadcrumbs are a nested <nav>


def open_category(pg, category: str):
    """Home -> sidebar RESULTS -> ``category``; returns the sidebar and the file names it lists."""
    nav = sidebar(pg)
    sync_api.expect(nav.get_by_text("Results", exact=True)).to_be_visible()
    nav.get_by_text(category, exact=True).click()
    sync_api.expect(nav.locator("table")).to_be_visible()
    listed = {Path(squash(text)).name for text in nav.locator("tbody tr td:first-child").all_inner_texts()}
    return nav, listed


def row(nav, name: str):
    return nav.locator("tbody tr").filter(has_text=re.compile(rf"(^|/){re.escape(name)}\s*$"))


def show_info_and_check_caption(pg, nav, name: str, caption: Path) -> None:
    row(nav, name).locator("a[iconname=information-circle]").click()
    description = nav.locator("li.prose")  # the caption, rendered from its .rst
    sync_api.expect(description).to_be_visible()
    shown = squash(description.inner_text())
    assert caption_text(caption) in shown, (name, shown)


def test_report_lists_both_tables_and_delivers_their_content(page, smoke_run, tmp_path):
    nav, listed = open_category(page, "Tables")
    assert listed == set(ITEMS["Tables"]), listed
    page.screenshot(path=tmp_path / "tables_listing.png")
    for name, (out_path, caption) in sorted(ITEMS["Tables"].items()):
        if name.endswith(".html"):
            # an HTML table is shown inline, in a frame beside the listing
            row(nav, name).locator("a[iconname=eye]").click()
            page.wait_for_function(f"() => [...document.querySelectorAll('iframe')].some(f => "
                                   f"f.src.includes('filename={name};'))")
            frame = next(f for f in page.frames if f"filename={name};" in f.url)
            content = frame.inner_text("body")
            assert ("103851050" in content) if "table1" in name else ("LC-Net" in content and "synthetic" in content)
            page.screenshot(path=tmp_path / f"{Path(name).stem}_shown.png")
            assert_real_picture(tmp_path / f"{Path(name).stem}_shown.png", min_bytes=10_000)
            show_info_and_check_caption(page, nav, name, caption)
            nav.get_by_text("Tables", exact=True).click()
            continue
        # a CSV's eye icon in the Snakemake report is a download link of the embedded file
        with page.expect_download() as download:
            row(nav, name).locator("a[iconname=eye]").click()
        assert download.value.suggested_filename == name
        content = Path(download.value.path()).read_text()
        assert content == (smoke_run / out_path).read_text(), name  # the report carries the table exactly
        if name == "table1.csv":
            assert "lc_net" in content and "103851050" in content  # the paper's LC-Net parameter count
        if name in ("table2.csv", "claims.csv"):
            assert "LC-Net" in content and "synthetic" in content
        show_info_and_check_caption(page, nav, name, caption)
        page.screenshot(path=tmp_path / f"{Path(name).stem}_info.png")
        nav.get_by_text("Tables", exact=True).click()  # breadcrumb back to the listing
    keep_screenshots(tmp_path)


@pytest.mark.parametrize("name", sorted(ITEMS.get("Figures", {})))
def test_report_renders_each_figure_with_its_caption(page, smoke_run, tmp_path, name):
    out_path, caption = ITEMS["Figures"][name]
    nav, listed = open_category(page, "Figures")
    assert listed == set(ITEMS["Figures"]), listed
    assert (smoke_run / out_path).is_file(), f"{out_path} is marked for the report but the smoke run made none"

    row(nav, name).locator("a[iconname=eye]").click()
    image = page.locator(f'img[src^="data:image/png"][src*="filename={name};"]')  # the embedded figure
    sync_api.expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    on_disk = imread(smoke_run / out_path).shape
    assert natural[0] > 100 and natural == [on_disk[1], on_disk[0]], (natural, on_disk)
    box = image.bounding_box()
    assert box["width"] > 100 and box["height"] > 100, box

    show_info_and_check_caption(page, nav, name, caption)
    sync_api.expect(image).to_be_visible()  # still shown beside its caption
    stem = Path(name).stem
    page.screenshot(path=tmp_path / f"{stem}_report.png")  # sidebar with caption + the figure
    image.screenshot(path=tmp_path / f"{stem}_rendered.png")  # the figure as the browser drew it
    assert_real_picture(tmp_path / f"{stem}_report.png")
    assert_real_picture(tmp_path / f"{stem}_rendered.png")
    keep_screenshots(tmp_path)


def keep_screenshots(tmp_path: Path) -> None:
    target = os.environ.get("HCRLC_REPORT_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in tmp_path.glob("*.png"):
            shutil.copy2(shot, Path(target) / shot.name)
