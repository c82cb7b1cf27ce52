"""``POST /<net>/classify`` with the image file itself as the body (``Content-Type:
image/png``, ``application/octet-stream``, …), as TorchServe takes it: the same answers as
the JSON form, ``top_k`` in the query (which the JSON form reads too), and the same
errors."""

from __future__ import annotations

import pytest

from tests.conftest import LiveServer
from tests.server.conftest import IMAGES, b64, call
from tests.server.test_server_errors import assert_error, encoded

TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".bmp": "image/bmp", ".tiff": "image/tiff"}


async def classify_raw(http, server: LiveServer, data: bytes, media: str, query: str = ""):
    return await call(http, server, "POST", f"/lenet/classify{query}", data=data,
                      headers={"Content-Type": media})


async def test_every_image_answers_as_its_json_form(server: LiveServer, http) -> None:
    for path in IMAGES:
        status, json_answer, _ = await call(http, server, "POST", "/lenet/classify",
                                            json={"image": b64(path)})
        assert status == 200, json_answer
        for media in (TYPES[path.suffix], "application/octet-stream"):
            status, raw_answer, _ = await classify_raw(http, server, path.read_bytes(), media)
            assert status == 200, (path.name, raw_answer)
            assert raw_answer == json_answer, path.name


async def test_the_format_is_read_from_the_bytes_not_the_type(server: LiveServer, http) -> None:
    jpeg = next(p for p in IMAGES if p.suffix == ".jpg")
    status, answer, _ = await classify_raw(http, server, jpeg.read_bytes(), "image/png")
    assert status == 200, answer
    assert answer["number"] == jpeg.name[0]


async def test_top_k_comes_in_the_query(server: LiveServer, http) -> None:
    image = IMAGES[0]
    status, json_answer, _ = await call(http, server, "POST", "/lenet/classify",
                                        json={"image": b64(image), "top_k": 3})
    assert status == 200
    status, raw_answer, _ = await classify_raw(http, server, image.read_bytes(), "image/png",
                                               "?top_k=3")
    assert status == 200, raw_answer
    assert raw_answer["top"] == json_answer["top"] and len(raw_answer["top"]) == 3


async def test_the_json_form_reads_the_same_query(server: LiveServer, http) -> None:
    """Not ignored with a JSON body: ``?top_k`` is honoured, and a mistyped parameter is
    the same 400 as with a raw body."""
    body = {"image": b64(IMAGES[0])}
    status, answer, _ = await call(http, server, "POST", "/lenet/classify?top_k=2", json=body)
    assert status == 200 and len(answer["top"]) == 2, answer
    status, answer, _ = await call(http, server, "POST", "/lenet/classify?topk=2", json=body)
    assert_error(status, answer, 400)
    assert "unknown query parameter" in answer["error"]


@pytest.mark.parametrize("query, words", [
    ("?top_k=0", "top_k"), ("?top_k=11", "top_k"), ("?top_k=three", "top_k"),
    ("?top_k=", "top_k"), ("?top_k=1&top_k=2", "more than once"),
    ("?topk=3", "unknown query parameter"),
])
async def test_a_bad_query_is_400(server: LiveServer, http, query: str, words: str) -> None:
    status, body, _ = await classify_raw(http, server, IMAGES[0].read_bytes(), "image/png",
                                         query)
    assert_error(status, body, 400)
    assert words in body["error"]


@pytest.mark.parametrize("name, data, expected, words", [
    ("empty", b"", 400, "empty"),
    ("not an image", b"hello, I am not a picture", 400, ""),
    ("blank", encoded("PNG"), 400, ""),
    ("truncated", IMAGES[0].read_bytes()[:300], 400, ""),
    ("GIF", encoded("GIF"), 415, ""),
])
async def test_a_bad_image_is_the_same_error_as_in_json(server: LiveServer, http, name: str,
                                                        data: bytes, expected: int,
                                                        words: str) -> None:
    status, body, _ = await classify_raw(http, server, data, "image/png")
    assert_error(status, body, expected)
    assert words in body["error"]
    if data:  # the JSON form of the same bytes fails the same way
        json_status, json_body, _ = await call(http, server, "POST", "/lenet/classify",
                                               json={"image": b64(data)})
        assert (json_status, json_body["error"]) == (status, body["error"]), name


async def test_other_bodies_are_415_naming_both_forms(server: LiveServer, http) -> None:
    status, body, _ = await classify_raw(http, server, b"3", "text/plain")
    assert_error(status, body, 415)
    assert "application/json" in body["error"] and "image/png" in body["error"]


async def test_a_raw_body_needs_credentials_and_a_size_under_the_limit(
        server: LiveServer, http) -> None:
    status, body, _ = await call(http, server, "POST", "/lenet/classify", auth=False,
                                 data=IMAGES[0].read_bytes(),
                                 headers={"Content-Type": "image/png"})
    assert_error(status, body, 401)
    status, body, _ = await classify_raw(http, server, b"\x89PNG" + bytes(17 * 2**20),
                                         "image/png")
    assert_error(status, body, 413)


async def test_the_openapi_document_lists_the_raw_form(server: LiveServer, http) -> None:
    status, doc, _ = await call(http, server, "GET", "/openapi.json")
    assert status == 200
    operation = doc["paths"]["/lenet/classify"]["post"]
    assert {"application/json", "image/png", "application/octet-stream"} <= set(
        operation["requestBody"]["content"])
    assert [p["name"] for p in operation["parameters"]] == ["top_k"]
