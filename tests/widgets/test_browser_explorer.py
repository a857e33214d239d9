"""End to end: the explorer notebook in a real JupyterLab in headless Chromium at 1366x768.

Starts JupyterLab on 127.0.0.1 with a token, opens `notebooks/explore_ct_windows.ipynb` (it
must not show as modified before anything runs), runs all cells, hides the file browser as
the notebook tells a laptop user to, and checks that the picture, the controls and the
histogram are all on screen at once; then types a width, clicks a preset (its button shows
as active) and clicks the picture (the readout point moves).
Screenshots go to ``$BRAINLIB_SCREENSHOTS`` (default: the test's tmp folder). Needs Debian's
`chromium` (CI installs it); skipped with a message only where it is not installed.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path, brainlib_kernel):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`); browser test skipped")
    pytest.importorskip("playwright", reason="playwright (pip) is needed to drive Chromium")
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / "explore_ct_windows.ipynb", work)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1")
    env.pop("BRAINLIB_HEADLESS", None)  # this time a frontend renders the widgets
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
         "--ServerApp.port_retries=0"] + (["--allow-root"] if os.geteuid() == 0 else []),
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                out = proc.stdout.read().decode(errors="replace")[-3000:]
                pytest.fail(f"JupyterLab did not start on {base}:\n{out}")
            time.sleep(0.5)
    yield base, token, work
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _open_and_run(page, base, token):
    page.goto(f"{base}/lab/tree/explore_ct_windows.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    # Wait for the brainlib kernel to be idle, then Run > Run All Cells.
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=120_000)
    page.wait_for_timeout(2000)  # the kernel's info reply has updated the notebook's metadata by now
    assert page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").count() == 0, (
        "JupyterLab marks the notebook modified on open (see tests/notebooks/test_notebook_files.py)")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    explorer = page.locator(".brainlib-window-explorer").first
    explorer.wait_for(timeout=180_000, state="attached")
    # a student on a laptop hides the file browser, as the notebook says (clicking its tab)
    current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if current.count():
        current.first.click()
    page.wait_for_timeout(500)
    news = page.locator(".jp-toast-button", has_text="No")  # JupyterLab's news question
    if news.count():
        news.first.click()
    explorer.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(1000)
    return explorer


def _readout(page) -> str:
    return page.locator(".brainlib-readout").first.inner_text()


def _inside(box, area, tol: float = 1.0) -> bool:
    return (box is not None and box["x"] >= area["x"] - tol and box["y"] >= area["y"] - tol
            and box["x"] + box["width"] <= area["x"] + area["width"] + tol
            and box["y"] + box["height"] <= area["y"] + area["height"] + tol)


def test_explorer_in_jupyterlab_at_laptop_size(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token, _ = lab
    shots = Path(os.environ.get("BRAINLIB_SCREENSHOTS", tmp_path))
    view = {"width": 1366, "height": 768}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=view)
        explorer = _open_and_run(page, base, token)
        image = explorer.locator(".brainlib-click-image")
        presets = explorer.locator(".brainlib-presets")
        hist = explorer.locator(".brainlib-histogram")
        image.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "explorer_1366x768.png"))
        # the whole widget fits the screen: picture, controls and histogram at once, all inside
        # the notebook's visible area (below JupyterLab's menu, tabs and toolbar, above its status bar)
        area = page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").first.bounding_box()
        assert _inside(area, {"x": 0, "y": 0, **view})
        for name, loc in (("image", image), ("presets", presets), ("width slider",
                          explorer.locator(".brainlib-width-slider")), ("histogram", hist),
                          ("readout", page.locator(".brainlib-readout").first)):
            assert _inside(loc.bounding_box(), area), f"{name} is not fully on a 1366x768 screen"
        assert image.bounding_box()["width"] >= 512
        assert "level 40 HU, width 80 HU" in _readout(page)
        active = presets.locator("button.mod-active")
        assert active.count() == 1 and active.inner_text().strip() == "brain 40/80"

        # typing a width
        before = image.screenshot()
        box = explorer.locator(".brainlib-width-box input")
        box.fill("350")
        box.press("Enter")
        page.wait_for_function("() => document.querySelector('.brainlib-readout').innerText"
                               ".includes('width 350 HU')", timeout=20_000)
        page.wait_for_timeout(500)
        assert image.screenshot() != before, "the picture did not change with the typed width"
        assert presets.locator("button.mod-active").count() == 0  # 40/350 is no preset

        # clicking a preset: its button shows as active
        presets.locator("button", has_text="subdural 80/200").click()
        page.wait_for_function("() => document.querySelector('.brainlib-readout').innerText"
                               ".includes('level 80 HU, width 200 HU')", timeout=20_000)
        active = presets.locator("button.mod-active")
        assert active.count() == 1 and active.inner_text().strip() == "subdural 80/200"
        assert explorer.locator(".brainlib-width-box input").input_value() == "200"

        # clicking the picture moves the readout point
        old = _readout(page)
        ib = image.bounding_box()
        page.mouse.click(ib["x"] + 0.6 * ib["width"], ib["y"] + 0.4 * ib["height"])
        page.wait_for_function("old => document.querySelector('.brainlib-readout').innerText != old",
                               arg=old, timeout=20_000)
        after = _readout(page)
        row, col = (int(v) for v in re.search(r"HU at \(row (\d+), col (\d+)\)", after).groups())
        assert abs(row - 0.4 * 256) <= 1 and abs(col - 0.6 * 256) <= 1, after  # 256 px phantom
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "explorer_after_clicks.png"))
        browser.close()
