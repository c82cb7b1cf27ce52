"""Swagger UI at /docs in a real browser: it renders every operation of /openapi.json
(OpenAPI 3.1, which Swagger UI 4 could not), from files on this server only, and "Try it
out" works with the credentials the browser was given for the page."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.conftest import LiveServer
from tests.web.conftest import OpenPage, get_json, screenshot


async def test_swagger_ui_renders_every_operation(server: LiveServer, open_page: OpenPage,
                                                  http, tmp_path) -> None:
    document = await get_json(http, server, "/openapi.json")
    operations = {(method.upper(), path)
                  for path, item in document["paths"].items()
                  for method in item}
    opened = await open_page(server, "/docs")
    page = opened.page
    blocks = page.locator(".opblock")
    await expect(blocks).to_have_count(len(operations), timeout=30_000)
    rendered = set()
    for i in range(len(operations)):
        block = blocks.nth(i)
        method = await block.locator(".opblock-summary-method").text_content()
        path = await block.locator(".opblock-summary-path").get_attribute("data-path")
        rendered.add(((method or "").strip(), path))
    assert rendered == operations
    await expect(page.locator(".info .title")).to_contain_text("nn-server")
    await expect(page.locator(".info .title")).to_contain_text("OAS 3.1")
    await expect(page.locator(".errors-wrapper")).to_have_count(0)  # no parse errors
    await screenshot(page, "docs.png", tmp_path)
    opened.guard.assert_clean()


async def test_try_it_out_uses_the_browsers_credentials(server: LiveServer,
                                                        open_page: OpenPage) -> None:
    opened = await open_page(server, "/docs")
    page = opened.page
    block = page.locator(".opblock").filter(
        has=page.locator('.opblock-summary-path[data-path="/list_nn"]'))
    await block.locator(".opblock-summary-control").click()
    await block.get_by_role("button", name="Try it out").click()
    await block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status")
    await expect(status).to_have_text("200", timeout=30_000)
    await expect(block.locator(".live-responses-table tbody .response-col_description")) \
        .to_contain_text("LeNet")
    await expect(block).not_to_contain_text(re.compile("Failed to fetch|TypeError"))
    opened.guard.assert_clean()
