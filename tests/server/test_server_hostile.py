"""Hostile input: every body a client can send gets a 4xx JSON answer, quickly — pathological
JSON one case at a time, wrong types in every field of every endpoint, huge batches — and
HEAD works wherever GET does."""

from __future__ import annotations

import json

import pytest
from sanic import Sanic

from nn_server.core.config import Config
from nn_server.web.app import create_app
from nn_server.web.requests import MAX_BATCH
from tests.conftest import LiveServer, basic_auth
from tests.server.conftest import IMAGES, b64, call

IMAGE = b64(IMAGES[0]) if IMAGES else ""
DEEP = 100_000

PATHOLOGICAL: dict[str, bytes] = {
    "deep-arrays": b'{"image": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "deep-objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "huge-integer": b'{"image": "x", "top_k": ' + b"9" * 100_000 + b"}",
    "huge-exponent": b'{"image": "x", "top_k": 1e999999}',
    "huge-string": json.dumps({"image": "A" * 5_000_001}).encode(),
    "duplicate-keys": json.dumps({"image": IMAGE}).encode()[:-1] + b', "image": "AAAA"}',
    "nan": b'{"image": "x", "top_k": NaN}',
    "infinity": b'{"image": "x", "top_k": -Infinity}',
    "lone-surrogate-key": b'{"\\ud800": 1, "image": "x"}',
    "lone-surrogate-value": b'{"image": "\\udfff"}',
    "not-utf8": b'{"image": "\xff\xfe"}',
    "utf16-bom": "\ufeff{}".encode("utf-16"),
    "truncated": b'{"image": "abc',
    "trailing-garbage": b'{"image": "abc"} x',
    "empty": b"",
    "just-whitespace": b"   \n ",
    "an-array": b'["image"]',
    "a-string": b'"image"',
    "null": b"null",
    "nul-bytes": b"\x00" * 1000,
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
async def test_pathological_json_is_400(server: LiveServer, http, name: str) -> None:
    status, body, _ = await call(http, server, "POST", "/lenet/classify",
                                 data=PATHOLOGICAL[name],
                                 headers={"Content-Type": "application/json"})
    assert 400 <= status < 500 and status != 401, (status, body)
    assert isinstance(body["error"], str) and body["status"] == status


WRONG_CLASSIFY: list[object] = [
    {}, {"image": None}, {"image": 7}, {"image": ["a"]}, {"image": {"b64": IMAGE}},
    {"image": ""}, {"image": "!!not base64!!"}, {"image": "data:image/png;base64,"},
    {"images": None}, {"images": "x"}, {"images": []}, {"images": {}},
    {"images": ["AAAA"] * (MAX_BATCH + 1)},
    {"image": IMAGE, "top_k": "3"}, {"image": IMAGE, "top_k": 0}, {"image": IMAGE, "top_k": []},
    {"images": [IMAGE], "top_k": 99},
]


@pytest.mark.parametrize("payload", WRONG_CLASSIFY,
                         ids=[str(i) for i in range(len(WRONG_CLASSIFY))])
async def test_wrong_types_in_classify_are_400(server: LiveServer, http,
                                               payload: object) -> None:
    status, body, _ = await call(http, server, "POST", "/lenet/classify", json=payload)
    assert status == 400, (status, body)
    assert isinstance(body["error"], str)


async def test_bad_images_in_a_batch_stay_in_their_slots(server: LiveServer, http) -> None:
    images = [IMAGE, "", "!!", b64(b"not an image"), IMAGE]
    status, body, _ = await call(http, server, "POST", "/lenet/classify",
                                 json={"images": images})
    assert status == 200, body
    assert [r.get("status") for r in body["results"]] == [None, 400, 400, 400, None]


@pytest.mark.parametrize("stray", [None, 3, {"x": 1}, ["a"], True])
async def test_a_batch_item_that_is_not_a_string_is_a_malformed_request(
    server: LiveServer, http, stray: object
) -> None:
    status, body, _ = await call(http, server, "POST", "/lenet/classify",
                                 json={"images": [IMAGE, stray]})
    assert status == 400 and "item 1" in body["error"], body


@pytest.mark.parametrize("query", [
    "?epochs=%00", "?epochs=-1", "?epochs=1e3", "?epochs=1&epochs=2", "?promote=%ff",
    "?promote=always&promote=better", "?" + "x" * 4000,
])
async def test_wrong_training_options_are_400(server: LiveServer, http, query: str) -> None:
    status, body, _ = await call(http, server, "GET", f"/lenet/train{query}")
    assert status == 400, (status, body)


def test_every_read_route_answers_head(tmp_path, monkeypatch) -> None:
    """HEAD wherever GET is safe: only the original GET /<net>/train changes state."""
    monkeypatch.setattr(Sanic, "test_mode", True)
    app = create_app(Config(state_dir=tmp_path))
    app.router.finalize()
    for route in app.router.routes:
        if "GET" in route.methods:
            changes = getattr(route.ctx, "changes_state", False)
            assert ("HEAD" in route.methods) != changes, route.path


@pytest.mark.parametrize("path", ["/health", "/ready", "/list_nn", "/lenet/about",
                                  "/lenet/train/status", "/lenet/versions", "/metrics",
                                  "/openapi.json"])
async def test_head_is_get_without_the_body(server: LiveServer, http, path: str) -> None:
    headers = {"Authorization": server_auth(server)}
    async with http.get(server.url + path, headers=headers) as got:
        await got.read()
    async with http.head(server.url + path, headers=headers) as head:
        assert head.status == got.status == 200
        assert head.headers["Content-Type"] == got.headers["Content-Type"]
        assert await head.read() == b""


def server_auth(server: LiveServer) -> str:
    return basic_auth(*server.auth)
