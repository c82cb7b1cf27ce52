"""A real browser for the web page's tests: the system's Chromium driven by Playwright.

``browser`` is one headless Chromium for the session (``NN_CHROMIUM``, else ``chromium``
on PATH: Debian's, which ``install.sh dev`` installs; Playwright's own browser downloads
are not used). ``open_page(server, path)`` opens a page in a fresh context that knows the
server's Basic credentials and guards the page: every request that would leave the server
is recorded and aborted, and console errors and uncaught exceptions are recorded too, so
each test ends by asserting the page stayed on the server and ran cleanly
(``Guard.assert_clean``). ``NN_SCREENSHOT_DIR`` keeps the screenshots tests take.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    async_playwright,
)

from tests.conftest import LiveServer, basic_auth
from tests.server.conftest import http  # noqa: F401  (a fixture for the route tests)

# Without the background-networking flags Chromium calls home (component updates, sync),
# which a closed network turns into noise and delays.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-extensions",
]
VIEWPORT = {"width": 1360, "height": 1000}
SCREENSHOT_DIR_ENV = "NN_SCREENSHOT_DIR"


def chromium_path() -> str:
    path = os.environ.get("NN_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no Chromium for the web page's tests: run ./install.sh dev "
                    "(it installs Debian's chromium) or set NN_CHROMIUM=/path/to/chromium")
    return path


@contextlib.contextmanager
def child_watcher() -> Iterator[None]:
    """The standard event-loop policy while Playwright starts its driver process.

    Tests that run a Sanic app in this process leave uvloop's policy installed, which has
    no child watcher; the session's loop is a standard asyncio loop and asks the policy
    for one to start a subprocess. Only the start needs it: the watcher, once attached,
    keeps serving that process.
    """
    policy = asyncio.get_event_loop_policy()
    try:
        policy.get_child_watcher()
    except NotImplementedError:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
        try:
            yield
        finally:
            asyncio.set_event_loop_policy(policy)
        return
    yield


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    driver = async_playwright()
    with child_watcher():
        started = await driver.__aenter__()
    try:
        yield started
    finally:
        await driver.__aexit__(None, None, None)


@pytest.fixture(scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    chromium = await playwright.chromium.launch(
        executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
    try:
        yield chromium
    finally:
        await chromium.close()


@dataclass
class Guard:
    """What a page did that it should not: requests off the server, errors."""

    origin: str
    outside: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    async def route(self, route: Route) -> None:
        url = route.request.url
        if same_origin(url, self.origin):
            await route.continue_()
        else:
            self.outside.append(url)
            await route.abort()

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def assert_clean(self, allowed_errors: tuple[str, ...] = ()) -> None:
        assert self.outside == [], f"requests left the server: {self.outside}"
        assert self.page_errors == [], f"uncaught errors: {self.page_errors}"
        errors = [e for e in self.console_errors if not any(a in e for a in allowed_errors)]
        assert errors == [], f"console errors: {errors}"


def same_origin(url: str, origin: str) -> bool:
    if url.startswith(("data:", "blob:")):  # made in the page itself
        return True
    a, b = urlsplit(url), urlsplit(origin)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


@dataclass
class Opened:
    page: Page
    context: BrowserContext
    guard: Guard


OpenPage = Callable[..., Awaitable[Opened]]


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    """``await open_page(server, "/")``: a guarded page of ``server``, with its credentials."""
    contexts: list[BrowserContext] = []

    async def opener(server: LiveServer, path: str = "/", **options: object) -> Opened:
        user, password = server.auth
        context = await browser.new_context(
            http_credentials={"username": user, "password": password},
            viewport=VIEWPORT, **options)
        contexts.append(context)
        guard = Guard(server.url)
        await context.route("**/*", guard.route)
        page = await context.new_page()
        page.on("console", guard.console)
        page.on("pageerror", lambda error: guard.page_errors.append(str(error)))
        await page.goto(server.url + path)
        return Opened(page, context, guard)

    yield opener
    for context in contexts:
        await context.close()


async def screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    """A full-page screenshot in ``tmp_path`` (and in ``$NN_SCREENSHOT_DIR`` if set)."""
    path = tmp_path / name
    await page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get(SCREENSHOT_DIR_ENV)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    return path


async def get_json(session: aiohttp.ClientSession, server: LiveServer, path: str) -> Any:
    """GET ``path`` as the server's user; the JSON answer (which must be a 200)."""
    headers = {"Authorization": basic_auth(*server.auth)}
    async with session.get(server.url + path, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()
