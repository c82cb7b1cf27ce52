"""The web page in a real browser, on the shipped weights (``shipped_server``, never
retrained): every sample uploaded and clicked reads right, a "1" drawn with the mouse or a
finger reads as 1, drops and bad images are handled — and no request leaves the server."""

from __future__ import annotations

import base64
import io
import itertools
import re

from PIL import Image
from playwright.async_api import Page, expect

from nn_server.networks import Network, load_registry
from tests.conftest import LiveServer
from tests.web.conftest import OpenPage, get_json, screenshot

REGISTRY = load_registry()

# A "1" as a pen draws it: one stroke from the top, leaning a little (fractions of the pad).
ONE = [[(0.55, 0.18), (0.52, 0.4), (0.49, 0.62), (0.46, 0.82)]]
# A "7": the bar, then the stem.
SEVEN = [[(0.25, 0.2), (0.72, 0.2), (0.62, 0.42), (0.5, 0.8)]]


def answer_is(label: str) -> re.Pattern[str]:
    """The answer's text starts with the label (and nothing glued to it)."""
    return re.compile(rf"^{re.escape(label)}(\s|$)")


async def choose(page: Page, cls: type[Network]) -> None:
    await page.locator(f'.networks button[data-network="{cls.name}"]').click()
    await expect(page.locator("#net-title")).to_have_text(cls.title)
    await expect(page.locator(".sample")).to_have_count(len(cls.sample_files()))


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


async def draw_by_touch(page: Page, strokes: list[list[tuple[float, float]]]) -> None:
    """Touch events as a finger makes them (Chromium turns them into pointer events)."""
    box = await page.get_by_test_id("pad").bounding_box()
    assert box is not None
    cdp = await page.context.new_cdp_session(page)
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"])
                  for x, y in stroke]
        await cdp.send("Input.dispatchTouchEvent", {
            "type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]})
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            for step in range(1, 9):
                x, y = x0 + (x1 - x0) * step / 8, y0 + (y1 - y0) * step / 8
                await cdp.send("Input.dispatchTouchEvent", {
                    "type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    await cdp.detach()


async def test_the_page_lists_the_networks(shipped_server: LiveServer, open_page: OpenPage,
                                           http) -> None:
    opened = await open_page(shipped_server)
    page = opened.page
    listed = await get_json(http, shipped_server, "/list_nn")
    buttons = page.locator(".networks button")
    await expect(buttons).to_have_text([n["title"] for n in listed["networks"]])
    first = next(iter(REGISTRY.values()))
    await expect(page.locator("#net-title")).to_have_text(first.title)
    await expect(page).to_have_title(re.compile(re.escape(first.title)))
    opened.guard.assert_clean()


async def test_every_sample_uploaded_reads_right(shipped_server: LiveServer,
                                                 open_page: OpenPage) -> None:
    opened = await open_page(shipped_server)
    page = opened.page
    for cls in REGISTRY.values():
        await choose(page, cls)
        for path in cls.sample_files():
            label = cls.sample_label(path)
            assert label is not None
            await page.locator("#clear").click()
            await expect(page.get_by_test_id("answer")).to_have_text("")
            await page.get_by_test_id("upload").set_input_files(path)
            await expect(page.locator("#picture-name")).to_have_text(path.name)
            await expect(page.get_by_test_id("answer")).to_have_text(answer_is(label))
    await expect(page.locator(".bar")).to_have_count(min(5, len(cls.labels)))
    opened.guard.assert_clean()


async def test_every_sample_clicked_reads_right(shipped_server: LiveServer,
                                                open_page: OpenPage, tmp_path) -> None:
    opened = await open_page(shipped_server)
    page = opened.page
    for cls in REGISTRY.values():
        await choose(page, cls)
        for path in cls.sample_files():
            label = cls.sample_label(path)
            assert label is not None
            await page.locator("#clear").click()
            await page.locator(f'.sample[data-sample="{path.name}"]').click()
            await expect(page.locator(".sample.active")).to_have_attribute(
                "data-sample", path.name)
            await expect(page.get_by_test_id("answer")).to_have_text(answer_is(label))
    # Every thumbnail is shown, TIFFs included (as their PNG preview).
    broken = await page.locator(".sample img").evaluate_all(
        "images => images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    assert broken == []
    await screenshot(page, "page-sample.png", tmp_path)
    opened.guard.assert_clean()


async def test_a_drawn_one_reads_as_one(shipped_server: LiveServer, open_page: OpenPage,
                                        tmp_path) -> None:
    opened = await open_page(shipped_server)
    page = opened.page
    await choose(page, REGISTRY["lenet"])
    await draw(page, ONE)
    answer = page.get_by_test_id("answer")
    await expect(answer).to_have_text(answer_is("1"))
    await expect(page.locator(".bar.top .bar-label")).to_have_text("1")
    await expect(page.locator("#confidence")).to_have_text(re.compile(r"^\d+\.\d % sure$"))
    await screenshot(page, "page-classified.png", tmp_path)
    # Clear, then another digit: the pad starts afresh.
    await page.locator("#clear").click()
    await expect(answer).to_have_text("")
    await draw(page, SEVEN)
    await expect(answer).to_have_text(answer_is("7"))
    opened.guard.assert_clean()


async def test_a_one_drawn_by_touch_reads_as_one(shipped_server: LiveServer,
                                                 open_page: OpenPage) -> None:
    opened = await open_page(shipped_server, has_touch=True)
    page = opened.page
    await choose(page, REGISTRY["lenet"])
    await draw_by_touch(page, ONE)
    await expect(page.get_by_test_id("answer")).to_have_text(answer_is("1"))
    opened.guard.assert_clean()


async def test_an_upload_while_the_page_loads_is_answered(shipped_server: LiveServer,
                                                          open_page: OpenPage) -> None:
    """Right after the page opens, before it has described its network."""
    opened = await open_page(shipped_server)
    path = next(p for p in REGISTRY["lenet"].sample_files() if p.name.startswith("8_"))
    await opened.page.get_by_test_id("upload").set_input_files(path)
    await expect(opened.page.get_by_test_id("answer")).to_have_text(answer_is("8"))
    await expect(opened.page.locator("#picture-name")).to_have_text(path.name)
    opened.guard.assert_clean()


async def test_a_dropped_file_is_classified(shipped_server: LiveServer,
                                            open_page: OpenPage) -> None:
    opened = await open_page(shipped_server)
    page = opened.page
    cls = REGISTRY["lenet"]
    await choose(page, cls)
    path = next(p for p in cls.sample_files() if p.name.startswith("3_"))
    transfer = await page.evaluate_handle(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name));
            return transfer;
        }""", [base64.b64encode(path.read_bytes()).decode(), path.name])
    await page.dispatch_event("#drop-zone", "dragenter", {"dataTransfer": transfer})
    await expect(page.locator("#drop-zone")).to_have_class(re.compile("dropping"))
    await page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    await expect(page.get_by_test_id("answer")).to_have_text(answer_is("3"))
    await expect(page.locator("#drop-zone")).not_to_have_class(re.compile("dropping"))
    opened.guard.assert_clean()


async def test_an_unreadable_image_shows_the_servers_reason(shipped_server: LiveServer,
                                                            open_page: OpenPage) -> None:
    opened = await open_page(shipped_server)
    page = opened.page
    blank = io.BytesIO()
    Image.new("L", (64, 64), 255).save(blank, "PNG")
    await page.get_by_test_id("upload").set_input_files(
        {"name": "blank.png", "mimeType": "image/png", "buffer": blank.getvalue()})
    confidence = page.locator("#confidence")
    await expect(confidence).to_have_text(re.compile(r"^No answer: .*blank"))
    await expect(confidence).to_have_class(re.compile("error"))
    await expect(page.get_by_test_id("answer")).to_have_text("")
    await page.get_by_test_id("upload").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"})
    await expect(confidence).to_have_text(re.compile(r"^No answer: "))
    # The browser logs the 400s as failed loads; nothing else may go wrong.
    opened.guard.assert_clean(allowed_errors=("status of 400", "status of 415"))


async def test_the_versions_mark_the_served_one(shipped_server: LiveServer,
                                                open_page: OpenPage, http) -> None:
    opened = await open_page(shipped_server)
    page = opened.page
    versions = await get_json(http, shipped_server, "/lenet/versions")
    served = versions["served"]
    row = page.locator(f'#versions tr[data-version="{served}"]')
    await expect(row).to_have_class(re.compile("served"))
    await expect(row.locator(".tag.served")).to_have_text("served")
    # Both precisions' accuracy, the one the workers run first and marked.
    [entry] = [v for v in versions["versions"] if v["version"] == served]
    runs = row.locator(".precision.runs")
    await expect(runs).to_have_text(f"{entry['accuracies']['int8']} % int8")
    await expect(row.locator('.precision[data-precision="float"]')).to_have_text(
        f"{entry['accuracies']['float']} % float")
    await expect(page.locator("#versions tr")).to_have_count(
        len(versions["versions"]))
    await expect(page.locator("#net-facts")).to_contain_text(served)
    opened.guard.assert_clean()
