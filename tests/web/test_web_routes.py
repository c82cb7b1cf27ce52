"""The routes behind the web page and Swagger UI, over HTTP: the page and its files, the
sample pictures, Swagger UI's files — right types, strict names, JSON errors, auth."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import aiohttp
import pytest
from PIL import Image
from swagger_ui_bundle import swagger_ui_path
from yarl import URL

from nn_server.networks import load_registry
from nn_server.web.routes.docs import ASSETS
from tests.conftest import LiveServer, basic_auth

REGISTRY = load_registry()

MEDIA = {".jpg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp", ".tiff": "image/tiff"}


async def fetch(http: aiohttp.ClientSession, server: LiveServer, path: str, *,
                auth: bool = True, **headers: str) -> tuple[int, str, bytes, Any]:
    """(status, content type, body, headers) of GET ``path``, sent as it is written (not
    normalised: "%2E%2E" stays "%2E%2E")."""
    if auth:
        headers["Authorization"] = basic_auth(*server.auth)
    url = URL(server.url + path, encoded=True)
    async with http.get(url, headers=headers) as response:
        return response.status, response.content_type, await response.read(), response.headers


async def test_the_page_needs_auth_and_is_html(server: LiveServer, http) -> None:
    status, media, _, headers = await fetch(http, server, "/", auth=False)
    assert status == 401 and media == "application/json"
    assert headers["WWW-Authenticate"].startswith("Basic")
    # What a browser's navigation sends: the JSON-only Accept check does not apply here.
    status, media, body, headers = await fetch(
        http, server, "/", Accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert status == 200 and media == "text/html"
    page = body.decode()
    for hook in ('data-testid="upload"', 'data-testid="pad"', 'data-testid="answer"'):
        assert hook in page
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy


async def test_the_page_loads_only_its_own_files(server: LiveServer, http) -> None:
    """Every script, style sheet and image the page names is on this server."""
    _, _, body, _ = await fetch(http, server, "/")
    page = body.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert urls and all(url.startswith("/") for url in urls), urls
    for url in urls:
        status, _, _, _ = await fetch(http, server, url)
        assert status == 200, url
    status, media, script, _ = await fetch(http, server, "/static/app.js")
    assert media == "text/javascript"
    assert not re.search(r"https?://", script.decode()), "the page's script names another host"


@pytest.mark.parametrize("path", [
    "/static/index.html",            # the pages have their own routes (with their policy)
    "/static/nothing.js",
    "/static/..%2Fapp.py",
    "/static/%2E%2E",
])
async def test_unknown_static_files_are_404_json(server: LiveServer, http, path: str) -> None:
    status, media, body, _ = await fetch(http, server, path)
    assert (status, media) == (404, "application/json"), body


async def test_static_files_are_revalidated(server: LiveServer, http) -> None:
    _, _, _, headers = await fetch(http, server, "/static/app.css")
    assert headers["Cache-Control"] == "no-cache"
    status, _, body, _ = await fetch(http, server, "/static/app.css",
                                     **{"If-Modified-Since": headers["Last-Modified"]})
    assert status == 304 and body == b""


@pytest.mark.parametrize("cls", REGISTRY.values(), ids=list(REGISTRY))
async def test_samples_list_every_sample_with_its_label(server: LiveServer, http, cls) -> None:
    status, media, body, _ = await fetch(http, server, f"/{cls.name}/samples")
    assert (status, media) == (200, "application/json")
    samples = json.loads(body)["samples"]
    files = cls.sample_files()
    assert [s["name"] for s in samples] == [p.name for p in files]
    for sample in samples:
        index = int(sample["name"].split("_", 1)[0])
        assert sample["label"] == cls.labels[index]
        assert sample["url"] == f"/{cls.name}/samples/{sample['name']}"
        shown = not sample["name"].endswith((".tif", ".tiff"))
        assert sample["preview"] == sample["url"] + ("" if shown else "?format=png")


@pytest.mark.parametrize("cls", REGISTRY.values(), ids=list(REGISTRY))
async def test_each_sample_is_served_as_it_is(server: LiveServer, http, cls) -> None:
    for path in cls.sample_files():
        # What an <img> sends as Accept: the route is not JSON, so it is not refused.
        status, media, body, _ = await fetch(http, server, f"/{cls.name}/samples/{path.name}",
                                             Accept="image/avif,image/webp,*/*;q=0.8")
        assert status == 200, path.name
        assert media == MEDIA[path.suffix.lower()]
        assert body == path.read_bytes()


async def test_a_tiff_sample_converts_to_png(server: LiveServer, http) -> None:
    cls = REGISTRY["lenet"]
    tiff = next(p for p in cls.sample_files() if p.suffix == ".tiff")
    status, media, body, _ = await fetch(http, server, f"/lenet/samples/{tiff.name}?format=png")
    assert (status, media) == (200, "image/png")
    with Image.open(io.BytesIO(body)) as png, Image.open(tiff) as original:
        assert png.format == "PNG" and png.size == original.size


@pytest.mark.parametrize("path, expected", [
    ("/lenet/samples/9_nothing.png", 404),
    ("/lenet/samples/..%2F..%2Fpyproject.toml", 404),
    ("/lenet/samples/%2E%2E%2Fconftest.py", 404),
    ("/lenet/samples/.", 404),
    ("/lenet/samples/7_pen.jpg?format=gif", 400),
    ("/lenet/samples/7_pen.jpg?format=", 400),
])
async def test_bad_sample_requests_are_json_errors(server: LiveServer, http, path: str,
                                                   expected: int) -> None:
    status, media, body, _ = await fetch(http, server, path)
    assert (status, media) == (expected, "application/json"), body
    assert b'"error"' in body


async def test_samples_need_auth(server: LiveServer, http) -> None:
    status, _, _, _ = await fetch(http, server, "/lenet/samples/7_pen.jpg", auth=False)
    assert status == 401


async def test_swagger_ui_is_served_from_local_files(server: LiveServer, http) -> None:
    status, media, body, headers = await fetch(http, server, "/docs", Accept="text/html")
    assert (status, media) == (200, "text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    urls = re.findall(r'(?:src|href)="([^"]+)"', body.decode())
    assert urls and all(url.startswith("/") for url in urls), urls
    for asset in ASSETS:
        status, _, content, _ = await fetch(http, server, f"/docs/{asset}")
        assert status == 200 and content == (swagger_ui_path / asset).read_bytes()
    status, media, _, _ = await fetch(http, server, "/docs/index.html")
    assert (status, media) == (404, "application/json")


def test_the_bundled_swagger_ui_reads_openapi_3_1() -> None:
    """Swagger UI renders OpenAPI 3.1 from version 5 on; 4.x shows an error instead."""
    bundle = (swagger_ui_path / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"', bundle)
    assert version is not None and int(version.group(1)) >= 5, version
