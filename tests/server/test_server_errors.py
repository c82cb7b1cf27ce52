"""Every error status of issue 3, always as JSON {"error": ..., "status": ...}."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from tests.conftest import LiveServer
from tests.server.conftest import IMAGES, b64, call

MB = 1024 * 1024


def png_bomb(side: int = 30_000) -> bytes:
    """A valid PNG that claims side×side pixels: ~0.9 GB decoded, ~1 MB on the wire."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    row = b"\x00" * (side + 1)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
            + chunk(b"IEND", b""))


def encoded(fmt: str, size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, 255).save(out, fmt)
    return out.getvalue()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def assert_error(status: int, body: dict, expected: int) -> None:
    assert status == expected, body
    assert isinstance(body["error"], str) and body["error"]
    assert body["status"] == expected
    assert "Traceback" not in body["error"]


CLASSIFY_400 = {
    "bad JSON": dict(data=b"{not json", headers={"Content-Type": "application/json"}),
    "not an object": dict(json=["image"]),
    "missing image": dict(json={"picture": "x"}),
    "image not a string": dict(json={"image": 12}),
    "bad base64": dict(json={"image": "@@@ not base64 @@@"}),
    "empty image": dict(json={"image": ""}),
    "unreadable image": dict(json={"image": b64(b"hello, I am not a picture")}),
    "too small image": dict(json={"image": b64(encoded("PNG", (20, 20)))}),
    "blank image": dict(json={"image": b64(encoded("PNG"))}),
    "truncated image": dict(json={"image": b64(IMAGES[0].read_bytes()[:300])}),
}


@pytest.mark.parametrize("case", CLASSIFY_400.values(), ids=CLASSIFY_400.keys())
async def test_400(server: LiveServer, http, case) -> None:
    status, body, _ = await call(http, server, "POST", "/lenet/classify", **case)
    assert_error(status, body, 400)


async def test_401_without_credentials(server: LiveServer, http) -> None:
    status, body, response = await call(http, server, "GET", "/list_nn", auth=False)
    assert_error(status, body, 401)
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="nn-server"')


@pytest.mark.parametrize("header", [
    "Basic " + base64.b64encode(b"test_nn:wrong").decode(),
    "Basic " + base64.b64encode(b"nobody:lenet").decode(),
    "Basic !!!", "Bearer abc",
])
async def test_401_with_bad_credentials(server: LiveServer, http, header) -> None:
    status, body, response = await call(http, server, "GET", "/lenet/about", auth=False,
                                        headers={"Authorization": header})
    assert_error(status, body, 401)
    assert "WWW-Authenticate" in response.headers


async def test_401_on_every_seed_route(server: LiveServer, http) -> None:
    for method, path in [("GET", "/list_nn"), ("GET", "/lenet/about"), ("GET", "/lenet/train"),
                         ("GET", "/lenet/train/status"), ("POST", "/lenet/classify"),
                         ("GET", "/metrics")]:
        status, body, _ = await call(http, server, method, path, auth=False)
        assert_error(status, body, 401)


async def test_404(server: LiveServer, http) -> None:
    for path in ["/nope", "/resnet/about", "/lenet/classify/extra"]:
        status, body, _ = await call(http, server, "GET", path)
        assert_error(status, body, 404)


async def test_405(server: LiveServer, http) -> None:
    status, body, _ = await call(http, server, "GET", "/lenet/classify")
    assert_error(status, body, 405)
    status, body, _ = await call(http, server, "POST", "/list_nn", json={})
    assert_error(status, body, 405)


@pytest.mark.parametrize("accept", ["text/html", "image/png, text/*"])
async def test_406(server: LiveServer, http, accept) -> None:
    status, body, _ = await call(http, server, "GET", "/list_nn", headers={"Accept": accept})
    assert_error(status, body, 406)


@pytest.mark.parametrize("accept", ["application/json", "*/*", "text/html, application/*;q=0.5"])
async def test_json_acceptable(server: LiveServer, http, accept) -> None:
    status, _, _ = await call(http, server, "GET", "/list_nn", headers={"Accept": accept})
    assert status == 200


async def test_415_body_not_json(server: LiveServer, http) -> None:
    status, body, _ = await call(http, server, "POST", "/lenet/classify", data=b"image=abc",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(status, body, 415)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PPM"])
async def test_415_image_format(server: LiveServer, http, fmt) -> None:
    status, body, _ = await call(http, server, "POST", "/lenet/classify",
                                 json={"image": b64(encoded(fmt))})
    assert_error(status, body, 415)


@pytest.mark.parametrize("mode", ["server", "prod_server"])
async def test_413_and_bomb_leave_memory_flat(request, http, mode) -> None:
    """A 17 MB body → 413 before it is read; a PNG bomb → 400 fast; RSS stays flat."""
    live: LiveServer = request.getfixturevalue(mode)
    pids = worker_pids(live)
    # Warm every worker up first (thread pools, first auth), so growth means the body.
    warm = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=warm) as fresh:
        for _ in range(12):
            status, _, _ = await call(fresh, live, "POST", "/lenet/classify",
                                      json={"image": b64(IMAGES[0])})
            assert status == 200
    before = {pid: rss_kb(pid) for pid in pids}
    big = b'{"image": "' + b"A" * (17 * MB) + b'"}'
    for _ in range(3):
        status, body, _ = await post_raw(http, live, big)
        assert_error(status, body, 413)
    bomb = png_bomb()
    started = time.monotonic()
    status, body, _ = await call(http, live, "POST", "/lenet/classify", json={"image": b64(bomb)})
    elapsed = time.monotonic() - started
    assert_error(status, body, 400)
    assert "pixels" in body["error"]
    assert elapsed < 3, elapsed
    after = {pid: rss_kb(pid) for pid in pids}
    growth_mb = max(after[p] - before[p] for p in pids) / 1024
    print(f"\n{mode}: RSS before {before} kB, after {after} kB, max growth {growth_mb:.1f} MB; "
          f"bomb ({len(bomb) / MB:.1f} MB PNG of 30000x30000) answered in {elapsed:.2f} s")
    assert growth_mb < 40


async def post_raw(http: aiohttp.ClientSession, live: LiveServer, body: bytes):
    """POST a large body; the server answers 413 and closes without reading it all."""
    return await call(http, live, "POST", "/lenet/classify", data=body,
                      headers={"Content-Type": "application/json"})


async def test_413_on_routes_that_take_no_body(server: LiveServer, http) -> None:
    status, body, _ = await call(http, server, "GET", "/list_nn", data=b"x" * (17 * MB))
    assert_error(status, body, 413)


async def test_413_chunked_body_is_cut_off(server: LiveServer, http) -> None:
    async def chunks():
        for _ in range(17):
            yield b"A" * MB

    status, body, _ = await call(http, server, "POST", "/lenet/classify", data=chunks(),
                                 headers={"Content-Type": "application/json"})
    assert_error(status, body, 413)


def worker_pids(live: LiveServer) -> list[int]:
    """The server process and its children (the workers in production mode)."""
    children = Path(f"/proc/{live.process.pid}/task/{live.process.pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return [live.process.pid, *pids]


async def test_image_over_our_pixel_limit_is_refused_before_decoding(server, http) -> None:
    """10,000×10,000 is under Pillow's own bomb limit but over MAX_PIXELS (40 MP): our
    check, not Pillow's, must refuse it, before any decoding."""
    started = time.monotonic()
    status, body, _ = await call(http, server, "POST", "/lenet/classify",
                                 json={"image": b64(png_bomb(10_000))})
    assert_error(status, body, 400)
    assert "10000x10000 pixels" in body["error"] and "40,000,000" in body["error"]
    assert time.monotonic() - started < 3
