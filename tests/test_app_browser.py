"""End to end: `python -m peekaboo.app` serves the page, a real headless Chromium (playwright) segments a toy scene.

Needs gradio and playwright (the app and dev extras) and a system Chromium (Debian's `chromium`, which .ci/run
installs); playwright's own browser download is not used.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from peekaboo.app import logic

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ITERATIONS = 100  # the toy world's raster_bilateral reaches IoU ~0.85 by then
STARTUP_SECONDS = 90
RUN_MS = 90_000

pytest.importorskip("gradio", reason="the web demo needs gradio: pip install -e '.[app]'")
playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the dev extra)")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH (apt-get install chromium; .ci/run does)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo as `make app` starts it, on a free port; its log is printed if the test fails."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("app") / "server.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "peekaboo.app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the app exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not answer on {url} within {STARTUP_SECONDS} s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log_path.read_text())


@pytest.fixture(scope="module")
def page(server):
    with playwright.sync_playwright() as driver:
        # --no-sandbox: Chromium refuses its sandbox when run as root (as CI is).
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(server)
        page.locator("#seg-run").wait_for()
        yield page
        browser.close()


def status(page) -> str:
    return page.locator("#seg-status textarea").input_value()


def wait_for_status(page, prefix: str) -> str:
    page.wait_for_function(
        "prefix => document.querySelector('#seg-status textarea').value.startsWith(prefix)", arg=prefix, timeout=RUN_MS
    )
    return status(page)


def test_missing_image_is_reported_in_the_page(page):
    page.locator("#seg-prompts textarea").fill("red circle")
    page.locator("#seg-run").click()
    message = wait_for_status(page, "error:")
    assert message.startswith("error: no image: upload an image"), message


def test_segment_a_toy_scene_in_the_browser(page, tmp_path):
    image, truth = logic.toy_example(0, "red circle")
    upload = tmp_path / "scene.png"
    Image.fromarray(image).save(upload)
    page.locator("#seg-image input[type=file]").set_input_files(str(upload))
    page.locator("#seg-image img").wait_for()
    page.locator("#seg-prompts textarea").fill("red circle")
    iterations = page.locator("#seg-iterations input[type=number]")
    iterations.fill(str(ITERATIONS))
    iterations.press("Enter")
    # Count the distinct pictures the masks image shows while the run streams its timelapse.
    page.evaluate(
        """() => {
            window.maskFrames = new Set();
            const record = () => document.querySelectorAll('#seg-masks img').forEach(img => maskFrames.add(img.src));
            new MutationObserver(record).observe(document.querySelector('#seg-masks'),
                {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
        }"""
    )
    page.locator("#seg-run").click()
    message = wait_for_status(page, "done:")
    assert message.startswith("done: 1 mask(s) for red circle in") and f"({ITERATIONS} iterations)" in message
    assert page.evaluate("window.maskFrames.size") >= 3  # timelapse frames, then the final overlay

    hrefs = _files(page)
    mask = np.asarray(Image.open(io.BytesIO(page.request.get(hrefs["mask_0_red_circle.png"]).body()))) > 127
    assert mask.shape == truth.shape
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8
    records = json.loads(page.request.get(hrefs["masks_rle.json"]).body())
    np.testing.assert_array_equal(mask_utils.decode([records[0]["segmentation"]])[..., 0].astype(bool), mask)
    cutout = np.asarray(Image.open(io.BytesIO(page.request.get(hrefs["cutout_0_red_circle.png"]).body())))
    assert cutout.shape == (*truth.shape, 4)

    shot_path = Path(os.environ.get("PEEKABOO_SCREENSHOT_DIR", tmp_path)) / "app_segment.png"
    shot_path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot_path), full_page=True)
    shot = np.asarray(Image.open(shot_path).convert("RGB"))
    assert shot.shape[0] >= 800 and shot.shape[1] == 1280
    assert shot.reshape(-1, 3).std(0).min() > 20  # a rendered page, not a blank or single-colour canvas


def test_stop_ends_a_run_and_frees_the_queue(page, tmp_path):
    image, _ = logic.toy_example(0, "red circle")
    Image.fromarray(image).save(tmp_path / "scene.png")
    page.locator("#seg-image input[type=file]").set_input_files(str(tmp_path / "scene.png"))
    page.locator("#seg-prompts textarea").fill("red circle")
    iterations = page.locator("#seg-iterations input[type=number]")
    iterations.fill("1000")
    iterations.press("Enter")
    page.locator("#seg-run").click()
    wait_for_status(page, "iteration")
    page.locator("#seg-stop").click()
    assert wait_for_status(page, "stopped").startswith("stopped")
    iterations.fill("5")
    iterations.press("Enter")
    page.locator("#seg-run").click()  # the one job slot was released: a new run starts and finishes
    assert "(5 iterations)" in wait_for_status(page, "done:")


def test_text_to_rgba_in_the_browser(page):
    page.get_by_role("tab", name="Text to RGBA").click()
    page.locator("#rgba-prompt input, #rgba-prompt textarea").first.fill("red circle")
    iterations = page.locator("#rgba-iterations input[type=number]")
    iterations.fill("60")
    iterations.press("Enter")
    page.locator("#rgba-run").click()
    page.wait_for_function(
        "document.querySelector('#rgba-status textarea').value.startsWith('done:')", timeout=RUN_MS
    )
    (href,) = _files(page, "#rgba-file").values()
    rgba = np.asarray(Image.open(io.BytesIO(page.request.get(href).body())))
    opaque = rgba[..., 3] > 127
    assert rgba.shape == (32, 32, 4) and 0.02 < opaque.mean() < 0.9
    red, green, blue = rgba[opaque][:, :3].astype(float).mean(0)
    assert red > green + 60 and red > blue + 60


def test_out_of_vocabulary_prompt_is_reported_in_the_page(page, tmp_path):
    page.get_by_role("tab", name="Segment").click()
    page.locator("#seg-prompts textarea").fill("purple elephant")
    page.locator("#seg-run").click()
    message = wait_for_status(page, "error:")
    assert "'purple elephant' is not in the toy world's vocabulary" in message, message
    # The toast shows the message as text: '<colour> <shape>' is not swallowed as an HTML tag.
    page.get_by_text("use '<colour> <shape>'").first.wait_for()


def _files(page, box: str = "#seg-files") -> dict[str, str]:
    """Download name -> URL of every file a Downloads box lists."""
    found = {}
    for anchor in page.locator(f"{box} a").all():
        href = anchor.get_attribute("href")
        if href:
            found[href.rsplit("/", 1)[-1]] = href
    return found
