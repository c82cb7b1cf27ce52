"""Request bodies: refused when too large before they are read, parsed as JSON otherwise.

Sanic reads a body before the handler runs unless the route streams; the classify and
infer routes stream, so a declared length over the limit is refused before a byte of it is
read (and before authentication has to trust it), and a chunked body is cut off at the
limit, as is a compressed body that inflates past it. Routes that take no body get the
declared-length check from middleware.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from typing import Any, cast

from sanic import Request
from sanic.http import Http

from nn_server.web.errors import BodyTooLarge, InvalidRequest, UnsupportedMediaType


def check_length(request: Request, limit: int) -> None:
    """413 when the request declares a body over ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        refuse_body(request, limit)


def media_of(request: Request) -> str:
    """The body's media type, without parameters, lower case ("" when not given)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


RAW_IMAGE_MEDIA = ("image/png", "image/jpeg", "image/bmp", "image/tiff",
                   "application/octet-stream")
"""The raw image bodies the OpenAPI document lists (any ``image/*`` is taken)."""


def is_image_media(media: str) -> bool:
    """A body that is the image file itself (``image/png``, ``image/jpeg``, …, or
    ``application/octet-stream``), as TorchServe and ``curl --data-binary @x.png`` send it.
    The decoder reads the format from the bytes; the type only says "not JSON"."""
    return media.startswith("image/") or media == "application/octet-stream"


async def read_json(request: Request, limit: int, also: str = "") -> dict[str, Any]:
    """The (streamed) request body as a JSON object, at most ``limit`` bytes of it.
    ``also`` names the other bodies the route takes, for the 415's message."""
    media = media_of(request)
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"the body must be JSON (Content-Type: application/json){also}, not {media}"
        )
    return parse_object(await read_body(request, limit), 'such as {"image": "<base64>"}')


async def read_image(request: Request, limit: int) -> bytes:
    """A raw image body (``is_image_media``): its bytes, at most ``limit``; 400 if empty."""
    data = await read_body(request, limit)
    if not data:
        raise InvalidRequest("the body is empty: send the image file's bytes, or JSON "
                             'such as {"image": "<base64>"}')
    return data


async def read_body(request: Request, limit: int) -> bytes:
    """The (streamed) request body, at most ``limit`` bytes of it; 413 past that."""
    check_length(request, limit)
    body = bytearray()
    # A streaming route's request.stream is the connection's Http object, which reads.
    stream = cast(Http | None, request.stream)
    while stream is not None:
        chunk = await stream.read()
        if chunk is None:
            break
        body += chunk
        if len(body) > limit:
            refuse_body(request, limit)
    return bytes(body)


# Content-Encoding → zlib's window bits: gzip's header, or zlib's (HTTP's "deflate").
ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
             "deflate": zlib.MAX_WBITS}


def decompress(request: Request, body: bytes, limit: int) -> bytes:
    """The body as sent before its ``Content-Encoding`` (gzip, deflate or none), at most
    ``limit`` bytes once inflated (413 past that: a small body can inflate to gigabytes)."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ENCODINGS:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none")
    inflater = zlib.decompressobj(ENCODINGS[encoding])
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise InvalidRequest(f"the body is not valid {encoding} data") from None
    if len(inflated) > limit:
        refuse_body(request, limit)
    if not inflater.eof:
        raise InvalidRequest(f"the {encoding} body is truncated")
    return inflated


def parse_object(body: bytes, example: str = "") -> dict[str, Any]:
    """A request body that must be one JSON object; 400 otherwise.

    Strict where JSON parsers differ, so that no body can reach a handler meaning one thing
    here and another elsewhere: duplicate keys, ``NaN``/``Infinity``, numbers out of range,
    keys with lone surrogates and nesting beyond Python's recursion limit are refused.
    """
    try:
        payload = json.loads(body, object_pairs_hook=_unique, parse_constant=_no_constant,
                             parse_float=_finite)
    except RecursionError:
        raise InvalidRequest("the body is not valid JSON: it is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and ours
        raise InvalidRequest(f"the body is not valid JSON: {_reason(exc)}") from None
    if not isinstance(payload, dict):
        raise InvalidRequest(f"the body must be a JSON object {example}".strip())
    return payload


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"the key {duplicate!r} appears twice")
    for key in keys:
        key.encode()  # a lone surrogate raises UnicodeEncodeError (a ValueError)
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:20]}… is out of range")
    return number


def _reason(exc: ValueError) -> str:
    if isinstance(exc, UnicodeError):
        return "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else \
            "a key holds a lone surrogate"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return str(exc)


def refuse_body(request: Request, limit: int) -> None:
    # Do not invite the client to send the body ("100 Continue") after refusing it.
    stream = cast(Http | None, request.stream)
    if stream is not None:
        stream.expecting_continue = False
    raise BodyTooLarge(f"the request body is larger than the limit of {limit:,} bytes")


def decode_image(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidRequest(f"{where} must be a base64 string, not {type(value).__name__}")
    text = value
    if text.startswith("data:") and "," in text:  # a data: URL, as browsers produce
        text = text.split(",", 1)[1]
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where} is not valid base64") from None
    if not data:
        raise InvalidRequest(f"{where} is empty")
    return data
