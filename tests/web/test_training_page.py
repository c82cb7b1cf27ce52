"""A tiny training started from the web page and watched live: the state, the progress
(epoch, loss, accuracy, ETA) and the chart while it runs, the outcome and the new version
after it ends, then serving another version from the table. Its own server, with the
quick-training defaults, so no other test sees its weights change."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import expect

from nn_server.networks import load_registry
from tests.conftest import LiveServer, start_server
from tests.web.conftest import OpenPage, get_json, screenshot
from tests.web.test_page import SEVEN, choose, draw

REGISTRY = load_registry()

EPOCHS = 3
"""Enough that the chart has finished epochs while later ones still run."""
TRAINING_TIMEOUT_MS = 180_000
# A server from before POST /<net>/train answers the page's POST with 405 (the page then
# uses GET), which the browser logs as a failed load.
ALLOWED_ERRORS = ("status of 405",)


@pytest.fixture(scope="module")
def training_server() -> Iterator[LiveServer]:
    with start_server("-d", "127.0.0.1:0") as live:
        yield live


async def test_a_training_is_watched_live_and_its_version_served(
    training_server: LiveServer, open_page: OpenPage, http, tmp_path,
) -> None:
    opened = await open_page(training_server)
    page = opened.page
    await choose(page, REGISTRY["lenet"])  # the page is up: a drawing now is seen
    await draw(page, SEVEN)  # the page as a visitor leaves it: an answer on show
    # Any digit: this server's test weights are too weak to promise a seven (test_page does).
    await expect(page.get_by_test_id("answer")).to_have_text(re.compile(r"^\d(\s|$)"))
    before = await get_json(http, training_server, "/lenet/versions")

    await page.locator("#epochs").fill(str(EPOCHS))
    await page.locator("#train-start").click()
    badge = page.locator("#train-state")
    await expect(badge).to_have_text("training", timeout=30_000)
    await expect(page.locator("#train-start")).to_be_disabled()
    await expect(page.locator("#progress")).to_be_visible()

    # One epoch done, more to come: its points are on the chart, the numbers are live.
    finished_points = page.locator("#chart circle:not(.live)")
    await expect(finished_points).to_have_count(2, timeout=TRAINING_TIMEOUT_MS)  # loss, acc.
    assert await badge.text_content() == "training", "the training ended before it was seen"
    epoch = re.compile(rf"^[1-{EPOCHS}] / {EPOCHS}$")
    await expect(page.locator("#stat-epoch")).to_have_text(epoch)
    await expect(page.locator("#stat-loss")).to_have_text(re.compile(r"^\d+\.\d{3}$"))
    await expect(page.locator("#stat-accuracy")).to_have_text(re.compile(r"^\d+\.\d %$"))
    await expect(page.locator("#stat-eta")).to_have_text(re.compile(r"^\d+ (s|min)"))
    await expect(page.locator("#progress-percent")).to_have_text(re.compile(r"^\d+ %$"))
    await screenshot(page, "page-training.png", tmp_path)

    await expect(badge).to_have_text("idle", timeout=TRAINING_TIMEOUT_MS)
    await expect(finished_points).to_have_count(2 * EPOCHS)
    await expect(page.locator("#chart path.line")).to_have_count(2)
    await expect(page.locator("#stat-epoch")).to_have_text(f"{EPOCHS} / {EPOCHS}")
    outcome = page.locator("#train-outcome")
    await expect(outcome).to_have_text(re.compile(r"^Last training .* % on the test set"))
    status = await get_json(http, training_server, "/lenet/train/status")
    assert status["state"] == "idle" and len(status["history"]) == EPOCHS
    await expect(outcome).to_contain_text(status["version"])
    await screenshot(page, "page-trained.png", tmp_path)

    # The new version is listed; serve the one that is not served now.
    rows = page.locator("#versions tr")
    await expect(rows).to_have_count(len(before["versions"]) + 1)
    await expect(page.locator(f'#versions tr[data-version="{status["version"]}"]')) \
        .to_be_visible()
    other = page.locator("#versions button[data-serve]").first
    version = await other.get_attribute("data-serve")
    await other.click()
    await expect(page.locator(f'#versions tr[data-version="{version}"]')) \
        .to_have_class(re.compile("served"))
    served = await get_json(http, training_server, "/lenet/versions")
    assert served["served"] == version
    opened.guard.assert_clean(ALLOWED_ERRORS)
