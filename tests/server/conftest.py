"""Helpers for talking to a live server with aiohttp (the server fixtures live in
tests/conftest.py)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ROOT, LiveServer, basic_auth

SUFFIXES = {".jpg", ".png", ".bmp", ".tiff"}
IMAGES = sorted(p for p in (ROOT / "images").iterdir() if p.suffix in SUFFIXES)


def b64(path: Path | bytes) -> str:
    data = path if isinstance(path, bytes) else path.read_bytes()
    return base64.b64encode(data).decode()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, server: LiveServer, method: str, path: str, *,
    auth: bool = True, **kwargs: Any,
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    """One request as ``server.auth`` (or anonymous); (status, JSON body, response).

    Fails the test on a non-JSON answer."""
    credentials = {"Authorization": basic_auth(*server.auth)} if auth else {}
    headers = {**credentials, **kwargs.pop("headers", {})}
    async with http.request(method, server.url + path, headers=headers,
                            ssl=server.ssl_context() or True, **kwargs) as response:
        text = await response.text()
        assert response.content_type == "application/json", text
        return response.status, json.loads(text), response


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float = 90.0, every: float = 0.2,
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)
