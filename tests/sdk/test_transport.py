"""Lifecycle and transport failures, against raw sockets that misbehave on purpose.

(The real server never hangs or answers HTML, so these stand-ins play those parts.)
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from nn_sdk import (
    ConnectError,
    NNClient,
    ProtocolError,
    ServerError,
    Timeout,
    TimeoutException,
)


@pytest.fixture
async def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here now


async def _serve(answer: bytes | None) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if answer is None:
            await asyncio.sleep(30)  # never answer
        else:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


@pytest.fixture
async def silent_url() -> AsyncIterator[str]:
    async for url in _serve(None):
        yield url


def _answer(status: str, content_type: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


@pytest.fixture
async def html_url() -> AsyncIterator[str]:
    async for url in _serve(_answer("200 OK", "text/html", b"<html>hello</html>")):
        yield url


@pytest.fixture
async def failing_url() -> AsyncIterator[str]:
    body = b'{"error": "the model crashed", "status": 500}'
    async for url in _serve(_answer("500 Internal Server Error", "application/json", body)):
        yield url


async def test_refused_connection_is_a_connect_error(closed_port: int) -> None:
    client = NNClient(f"127.0.0.1:{closed_port}")
    with pytest.raises(ConnectError, match="connection refused") as caught:
        await client.list_networks()
    assert f"127.0.0.1:{closed_port}" in str(caught.value)
    assert not isinstance(caught.value.__cause__, ConnectError)  # aiohttp's, chained


async def test_silence_is_a_timeout(silent_url: str) -> None:
    async with NNClient(silent_url, timeout=Timeout(total=0.3, connect=0.3)) as client:
        with pytest.raises(TimeoutException, match="took longer than"):
            await client.status()


async def test_html_is_a_protocol_error(html_url: str) -> None:
    with pytest.raises(ProtocolError, match="without a JSON object"):
        await NNClient(html_url).about()


async def test_5xx_is_a_server_error(failing_url: str) -> None:
    # The real server only answers 500 for bugs, so a stand-in plays one.
    with pytest.raises(ServerError, match="the model crashed") as caught:
        await NNClient(failing_url).status()
    assert caught.value.status == 500


async def test_lifecycle(closed_port: int) -> None:
    client = NNClient(f"127.0.0.1:{closed_port}")
    async with client as entered:
        assert entered is client and not client.is_closed
    assert client.is_closed
    await client.aclose()  # twice: harmless
    with pytest.raises(RuntimeError, match="closed"):
        await client.status()
    with pytest.raises(RuntimeError, match="closed"):
        async with client:
            pass


async def test_repr_names_the_server() -> None:
    expected = "NNClient('http://10.0.0.1:5000', user='me')"
    assert repr(NNClient("10.0.0.1:5000", user="me")) == expected
