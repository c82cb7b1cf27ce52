"""The parsing of requests, as pure functions: the Open Inference Protocol's bodies
(``oip.parse_request``), the seed routes' JSON and options (``web.requests``) and the heads
Sanic is lenient with (``web.connections``). The live servers' tests keep a few of each
kind end to end; the tables are here, where a case costs microseconds."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from nn_server.web import oip
from nn_server.web.connections import Exchange, head_problem, strictness_problem
from nn_server.web.errors import InvalidRequest
from nn_server.web.requests import (
    MAX_BATCH,
    MAX_EPOCHS,
    images_of,
    top_k_asked,
    top_k_of,
    training_request,
)

IMAGE = (Path(__file__).resolve().parents[1] / "images" / "3_pen.bmp").read_bytes()
ONE = {"name": "image", "datatype": "BYTES", "shape": [1],
       "data": [base64.b64encode(IMAGE).decode()]}
CLASSES = 10


def bytes_tensor(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def binary_input(data: bytes, count: int = 1) -> dict[str, Any]:
    return {"name": "image", "datatype": "BYTES", "shape": [count],
            "parameters": {"binary_data_size": len(data)}}


def parse(body: dict[str, Any] | bytes, binary: bytes = b"",
          header_length: str | None = None) -> oip.InferRequest:
    header = body if isinstance(body, bytes) else json.dumps(body).encode()
    if binary and header_length is None:
        header_length = str(len(header))
    return oip.parse_request(header + binary, header_length, classes=CLASSES,
                             max_batch=MAX_BATCH)


BAD_JSON = {
    "no inputs": ({}, "inputs"),
    "empty inputs": ({"inputs": []}, "inputs"),
    "unknown input": ({"inputs": [{**ONE, "name": "picture"}]}, "unknown input"),
    "twice": ({"inputs": [ONE, ONE]}, "more than once"),
    "FP32": ({"inputs": [{**ONE, "datatype": "FP32"}]}, "BYTES"),
    "no datatype": ({"inputs": [{k: v for k, v in ONE.items() if k != "datatype"}]}, "BYTES"),
    "2-D shape": ({"inputs": [{**ONE, "shape": [1, 1]}]}, "shape"),
    "string shape": ({"inputs": [{**ONE, "shape": ["1"]}]}, "shape"),
    "-1 shape": ({"inputs": [{**ONE, "shape": [-1]}]}, "from 1 to"),
    "0 shape": ({"inputs": [{**ONE, "shape": [0]}]}, "from 1 to"),
    "too many": ({"inputs": [{**ONE, "shape": [MAX_BATCH + 1],
                              "data": ["AAAA"] * (MAX_BATCH + 1)}]}, f"to {MAX_BATCH}"),
    "shape and data differ": ({"inputs": [{**ONE, "shape": [2]}]}, "elements in data"),
    "no data": ({"inputs": [{k: v for k, v in ONE.items() if k != "data"}]}, "data"),
    "not base64": ({"inputs": [{**ONE, "data": ["%%%"]}]}, '"image"[0]'),
    "a number": ({"inputs": [{**ONE, "data": [7]}]}, '"image"[0]'),
    "shared memory": ({"inputs": [{**ONE, "parameters": {"shared_memory_region": "r"}}]},
                      "shared memory"),
    "unknown output": ({"inputs": [ONE], "outputs": [{"name": "logits"}]}, "unknown output"),
    "output twice": ({"inputs": [ONE], "outputs": [{"name": "label"}] * 2}, "more than once"),
    "binary_data not bool": ({"inputs": [ONE], "outputs": [
        {"name": "label", "parameters": {"binary_data": "yes"}}]}, "binary_data"),
    "classification 0": ({"inputs": [ONE], "outputs": [
        {"name": "probabilities", "parameters": {"classification": 0}}]}, "classification"),
    "classification 11": ({"inputs": [ONE], "outputs": [
        {"name": "probabilities", "parameters": {"classification": 11}}]}, "classification"),
    "classification of label": ({"inputs": [ONE], "outputs": [
        {"name": "label", "parameters": {"classification": 1}}]}, "classification"),
    "binary_data_output not bool": ({"inputs": [ONE], "parameters": {"binary_data_output": 1}},
                                    "binary_data_output"),
    "id not a string": ({"inputs": [ONE], "id": 42}, '"id"'),
    "parameters not an object": ({"inputs": [ONE], "parameters": []}, "parameters"),
}


@pytest.mark.parametrize(("body", "fragment"), BAD_JSON.values(), ids=BAD_JSON.keys())
def test_bad_json_requests_are_refused_with_the_reason(body: dict[str, Any],
                                                       fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse(body)
    assert caught.value.status_code == 400
    assert fragment in str(caught.value), caught.value


DATA = bytes_tensor(IMAGE)
BAD_BINARY = {
    "size past the body": (binary_input(DATA + b"xx"), DATA, "binary_data_size"),
    "bytes after the tensors": (binary_input(DATA), DATA + b"zz", "beyond"),
    "fewer elements than the shape": (binary_input(DATA, 2), DATA, "holds 1 elements"),
    "element longer than the data": (binary_input(DATA[:-1]), DATA[:-1], "claims"),
    "bytes after the elements": (binary_input(DATA + b"\0\0"), DATA + b"\0\0", "past"),
    "empty element": (binary_input(b"\0\0\0\0"), b"\0\0\0\0", "empty"),
    "data and binary": ({**binary_input(DATA), "data": ["AAAA"]}, DATA, "both"),
    "negative size": ({**binary_input(DATA), "parameters": {"binary_data_size": -1}}, DATA,
                      "binary_data_size"),
}


@pytest.mark.parametrize(("tensor", "data", "fragment"), BAD_BINARY.values(),
                         ids=BAD_BINARY.keys())
def test_bad_binary_requests_are_refused_with_the_reason(tensor: dict[str, Any], data: bytes,
                                                         fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse({"inputs": [tensor]}, data)
    assert fragment in str(caught.value), caught.value


BAD_HEADERS = {
    "not JSON": (b"{", None, "JSON"),
    "a JSON array": (b"[]", None, "object"),
    "header length not a number": (b"{}", "ten", oip.HEADER_LENGTH),
    "header length 0": (b"{}", "0", oip.HEADER_LENGTH),
    "header length past the body": (b"{}", "3", "only 2 bytes"),
}


@pytest.mark.parametrize(("body", "length", "fragment"), BAD_HEADERS.values(),
                         ids=BAD_HEADERS.keys())
def test_bad_bodies_are_refused_with_the_reason(body: bytes, length: str | None,
                                                fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse(body, header_length=length)
    assert fragment in str(caught.value), caught.value


def test_a_good_request_parses_in_both_encodings() -> None:
    assert parse({"inputs": [ONE]}).images == [IMAGE]
    assert parse({"inputs": [binary_input(DATA)]}, DATA).images == [IMAGE]


# -- the seed routes ---------------------------------------------------------------------

@pytest.mark.parametrize(("query", "body", "fragment"), [
    ({"epochs": ["1", "2"]}, None, "more than once"),
    ({"epoch": ["3"]}, None, "unknown training option"),
    ({"epochs": ["0"]}, None, f"from 1 to {MAX_EPOCHS}"),
    ({"epochs": [str(MAX_EPOCHS + 1)]}, None, f"from 1 to {MAX_EPOCHS}"),
    ({"epochs": ["two"]}, None, "whole number"),
    ({}, {"epochs": True}, "whole number"),
    ({}, {"epochs": 2.5}, "whole number"),
    ({"promote": [""]}, None, '"promote"'),
    ({}, {"promote": "sometimes"}, '"promote"'),
])
def test_bad_training_options_are_refused(query: dict[str, list[str]],
                                          body: dict[str, Any] | None, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        training_request(query, body)
    assert fragment in str(caught.value), caught.value


def test_training_options_from_the_query_and_the_body() -> None:
    asked = training_request({"epochs": ["3"]}, {"promote": "always"})
    assert (asked.epochs, asked.promote) == (3, "always")
    default = training_request({})
    assert (default.epochs, default.promote) == (None, "better")


@pytest.mark.parametrize(("payload", "fragment"), [
    ({"images": []}, "non-empty list"),
    ({"images": "AAAA"}, "non-empty list"),
    ({"images": ["AAAA"] * (MAX_BATCH + 1)}, f"at most {MAX_BATCH}"),
    ({"images": ["AAAA", 7]}, "item 1 is a int"),
])
def test_bad_image_lists_are_refused(payload: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        images_of(payload)
    assert fragment in str(caught.value), caught.value


def test_an_image_that_is_not_base64_fails_only_its_own_slot() -> None:
    good = base64.b64encode(IMAGE).decode()
    [first, second] = images_of({"images": [good, "%%%"]})
    assert first == IMAGE and isinstance(second, InvalidRequest)
    assert '"images"[1]' in str(second)


@pytest.mark.parametrize("k", [0, CLASSES + 1, True, "3", 2.0])
def test_top_k_must_be_a_label_count(k: object) -> None:
    with pytest.raises(InvalidRequest, match="top_k"):
        top_k_of({"top_k": k}, CLASSES)
    assert top_k_of({"top_k": 3}, CLASSES) == 3 and top_k_of({}, CLASSES) is None


@pytest.mark.parametrize("query, payload, k", [
    ({}, {}, None), ({"top_k": ["3"]}, {}, 3), ({}, {"top_k": 4}, 4),
    ({"top_k": ["2"]}, {"top_k": 2}, 2),
])
def test_top_k_comes_from_the_query_or_the_body(query: dict[str, list[str]],
                                                payload: dict[str, Any], k: int | None) -> None:
    assert top_k_asked(query, payload, CLASSES) == k


@pytest.mark.parametrize("query, payload, words", [
    ({"top_k": ["2"]}, {"top_k": 3}, "2 in the query but 3 in the body"),
    ({"topk": ["3"]}, {}, "unknown query parameter(s): topk"),
    ({"topk": ["3"]}, {"top_k": 3}, "unknown query parameter(s): topk"),
    ({"top_k": ["0"]}, {}, "top_k"),
])
def test_a_bad_or_conflicting_top_k_is_refused(query: dict[str, list[str]],
                                               payload: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        top_k_asked(query, payload, CLASSES)
    assert words in str(refused.value)


# -- request heads -----------------------------------------------------------------------

@pytest.mark.parametrize(("head", "fragment"), [
    (b"GET /list_nn", "METHOD TARGET HTTP/1.1"),
    (b"GET  /list_nn HTTP/1.1", "METHOD TARGET HTTP/1.1"),
    (b"GET /list_nn HTTP/2.0", "HTTP version"),
    (b"GET /list_nn HTTP/1.1\r\nHost: a\r\ngarbage", "line 3 of the request head"),
])
def test_a_head_sanic_cannot_parse_is_explained(head: bytes, fragment: str) -> None:
    assert fragment in head_problem(head)


@pytest.mark.parametrize(("head", "fragment"), [
    (b"GET / HTTP/1.1\r\nX-A: b\r\n  c: d", "folding"),
    (b"GET / HTTP/1.1\r\nX-A: b\r\n\tc: d", "folding"),
    (b"POST / HTTP/1.1\r\nContent-Length : 2", "before its colon"),
    (b"POST / HTTP/1.1\r\nContent-Length\t: 2", "before its colon"),
])
def test_forms_rfc_9112_forbids_are_refused(head: bytes, fragment: str) -> None:
    assert fragment in (strictness_problem(head) or "")


def test_a_head_rfc_9112_allows_passes() -> None:
    assert strictness_problem(b"GET / HTTP/1.1\r\nHost: a b :c\r\nX-A: b :") is None


@pytest.mark.parametrize(("text", "base"), [
    ("+2", 10), (" 2", 10), ("0x2", 16), ("٢", 10), ("1_0", 10), ("", 10), ("-1", 10),
    ("1" * 20, 10), ("g", 16),
])
def test_sizes_are_ascii_digits_only(text: str, base: int) -> None:
    with pytest.raises(ValueError):
        Exchange._safe_int(text, base)


@pytest.mark.parametrize(("text", "base", "value"), [
    ("2", 10, 2), ("2 \t", 10, 2), ("ff", 16, 255), ("0", 16, 0),
])
def test_sizes_in_ascii_digits_read(text: str, base: int, value: int) -> None:
    assert Exchange._safe_int(text, base) == value
