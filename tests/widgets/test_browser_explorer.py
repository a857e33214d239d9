"""End to end: the explorer notebook in a real JupyterLab in headless Chromium.

Starts JupyterLab on 127.0.0.1 with a token, opens `notebooks/explore_ct_windows.ipynb`,
runs all cells, drags the width slider and checks from screenshots that the picture changed
and from the page that the width readout shows the new value. Needs Debian's `chromium`
(CI installs it); skipped with a message only where it is not installed.
"""
from __future__ import annotations

import os
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


def test_width_slider_changes_image_and_readout(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token, _ = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab/tree/explore_ct_windows.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook", timeout=90_000)
        # Wait for the brainlib kernel to be idle, then Run > Run All Cells.
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=120_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        slider = page.locator(".widget-hslider", has_text="width (HU)").first
        slider.wait_for(timeout=180_000, state="attached")
        slider.scroll_into_view_if_needed()
        image = page.locator(".widget-image").first
        image.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        readout = slider.locator(".widget-readout")
        assert float(readout.inner_text()) == 80.0
        before = image.screenshot(path=str(tmp_path / "before.png"))

        handle = slider.locator(".noUi-handle").first
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + 60, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        new_width = f"{float(readout.inner_text()):g}"
        assert new_width != "80", "dragging the width slider did not change its value"
        # The explorer's own readout (below the picture) follows the slider.
        page.wait_for_function(
            "w => [...document.querySelectorAll('.widget-html code')].some("
            "e => e.textContent.includes('width ' + w + ' HU'))", arg=new_width, timeout=20_000)
        page.wait_for_timeout(500)
        after = image.screenshot(path=str(tmp_path / "after.png"))
        browser.close()
    assert before != after, "the picture did not change when the window width changed"
