"""REPORT.html in headless Chromium: fits a 1280-px window, status cells visible, no script runs.

Builds a report from a synthetic outputs folder with a wide claims table, opens it at
1280 x 800 and checks that the page never scrolls sideways (wide tables scroll inside their
own box) and that every status cell of the results and claims tables lies within the
viewport's width. Needs Debian's `chromium` and the `playwright` package; skipped otherwise.
"""
from __future__ import annotations

import shutil

import pytest

from brainlib.report import write_report

from .test_report import _fake_outputs

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WIDTH, HEIGHT = 1280, 800


@pytest.fixture()
def report_page(tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`); browser test skipped")
    pytest.importorskip("playwright", reason="playwright (pip) is needed to drive Chromium")
    from playwright.sync_api import sync_playwright

    out = tmp_path / "outputs"
    _fake_outputs(out, tmp_path / "notebooks")
    write_report(out, notebooks_dir=tmp_path / "notebooks")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto((out / "REPORT.html").as_uri())
        page.wait_for_load_state("load")
        yield page, dialogs
        browser.close()


def _overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_report_fits_1280_and_status_stays_visible(report_page):
    page, dialogs = report_page
    assert _overflow(page) <= WIDTH
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert _overflow(page) <= WIDTH  # opened: the long claims table scrolls inside its box
    # the wide claims table really is wider than its box (else this test proves nothing)
    widths = page.evaluate("""() => [...document.querySelectorAll('details.claims .scroll')]
        .map(b => [b.scrollWidth, b.clientWidth])""")
    assert widths and all(sw > cw for sw, cw in widths)
    boxes = page.evaluate("""() => [...document.querySelectorAll('td.status')].map(td => {
        const r = td.getBoundingClientRect(); return [r.left, r.right, r.width]; })""")
    assert len(boxes) >= 6
    for left, right, width in boxes:
        assert width > 0 and left >= 0 and right <= WIDTH
    # scrolling a wide table sideways keeps its status column pinned in view
    page.evaluate("document.querySelectorAll('details.claims .scroll').forEach(b => b.scrollLeft = 5000)")
    pinned = page.evaluate("""() => [...document.querySelectorAll('details.claims td.status')].map(td => {
        const box = td.closest('.scroll').getBoundingClientRect(), r = td.getBoundingClientRect();
        return [r.left - box.left, r.right <= box.right]; })""")
    assert pinned and all(abs(offset) < 2 and inside for offset, inside in pinned)
    assert dialogs == []  # the planted <script> in the data never ran
    assert page.locator("text=<script>alert('series')</script>").count() >= 1  # shown as text
