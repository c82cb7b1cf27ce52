"""Make ``docs/web.png``, the README's picture of the web page, from a real server.

Starts ``python -m nn_server -d`` on a free loopback port with a throw-away state
directory (the shipped weights), runs a short quick-settings training from the page so the
chart and the versions table have something to show (it scores below the shipped weights,
so it is kept and not served), draws a "2" on the pad and takes a full-page screenshot in
Debian's Chromium driven by Playwright (``./install.sh dev`` installs both).

    python tools/make_web_screenshot.py [--data-dir ../shared] [--out docs/web.png]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.async_api import Page, ViewportSize, async_playwright, expect

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "test_nn", "lenet"  # the default user, on loopback only
VIEWPORT: ViewportSize = {"width": 1280, "height": 1000}
EPOCHS = 4
# A "2" as a pen draws it (fractions of the pad): the hook, the diagonal, the base.
TWO = [[(0.28, 0.32), (0.38, 0.2), (0.55, 0.17), (0.7, 0.25), (0.72, 0.4),
        (0.6, 0.55), (0.42, 0.7), (0.27, 0.83), (0.5, 0.83), (0.76, 0.83)]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/v2/health/ready", timeout=2):  # public
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server at {url} did not get ready in {timeout_s:.0f} s")


async def draw(page: Page, strokes: list[list[tuple[float, float]]]) -> None:
    box = await page.get_by_test_id("pad").bounding_box()
    assert box is not None
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"])
                  for x, y in stroke]
        await page.mouse.move(*points[0])
        await page.mouse.down()
        for point in points[1:]:
            await page.mouse.move(*point, steps=8)
        await page.mouse.up()


async def shoot(url: str, out: Path) -> None:
    chromium = os.environ.get("NN_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        raise SystemExit("no Chromium: run ./install.sh dev or set NN_CHROMIUM")
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        context = await browser.new_context(
            http_credentials={"username": USER, "password": PASSWORD}, viewport=VIEWPORT)
        page = await context.new_page()
        await page.goto(url + "/")
        await expect(page.locator(".sample").first).to_be_visible()  # the page is up
        await page.locator("#epochs").fill(str(EPOCHS))
        await page.locator("#train-start").click()
        await expect(page.locator("#train-state")).to_have_text("training", timeout=30_000)
        await expect(page.locator("#train-state")).to_have_text("idle", timeout=600_000)
        await expect(page.locator("#train-outcome")).to_have_text(re.compile("^Last training"))
        await draw(page, TWO)
        await expect(page.get_by_test_id("answer")).to_have_text(re.compile(r"^2(\s|$)"))
        await expect(page.locator(".toast")).to_have_count(0, timeout=10_000)  # they fade
        await page.screenshot(path=str(out), full_page=True)
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web.png")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="nn-screenshot-") as tmp:
        env = {**os.environ, "NN_STATE_DIR": tmp, "NN_DATA_DIR": str(args.data_dir),
               "NN_LOCALADDR": "127.0.0.1",
               "NN_TRAIN_SUBSET": "6000", "NN_TEST_SUBSET": "2000"}
        server = subprocess.Popen([sys.executable, "-m", "nn_server", "-d", f"127.0.0.1:{port}"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        try:
            wait_ready(url)
            asyncio.run(shoot(url, args.out))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
