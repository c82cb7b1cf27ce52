"""The seed's routes, generated from the network registry: ``/list_nn`` and, per network,
``/<name>/about``, ``/<name>/train``, ``/<name>/train/status`` and ``/<name>/classify``."""

from __future__ import annotations

import base64
import binascii
import json as jsonlib
from typing import Any, cast

from sanic import Blueprint, Request
from sanic.http import Http
from sanic.response import HTTPResponse, json

from nn_server.config import Config
from nn_server.errors import (
    BodyTooLarge,
    InvalidRequest,
    Unavailable,
    UnsupportedMediaType,
    error_body,
    status_of,
)
from nn_server.networks import REGISTRY, Network, Prediction
from nn_server.serving import Models
from nn_server.state import NetworkState
from nn_server.supervisor import Supervisor

MAX_BATCH = 256


def networks_blueprint(config: Config) -> Blueprint:
    bp = Blueprint("networks")

    @bp.get("/list_nn", name="list_nn")
    async def list_nn(request: Request) -> HTTPResponse:
        networks = [
            {"name": cls.name, "title": cls.title, "url": f"/{cls.name}"}
            for cls in REGISTRY.values()
        ]
        return json({
            "text": [f"{n['title']} url:{n['url']}" for n in networks],
            "networks": networks,
        })

    for cls in REGISTRY.values():
        add_network_routes(bp, cls, config)
    return bp


def add_network_routes(bp: Blueprint, cls: type[Network], config: Config) -> None:
    name, title = cls.name, cls.title
    state = NetworkState.of(config.state_dir, name)

    def refuse_while_training() -> None:
        # The original server's behaviour, kept behind NN_SEED_COMPAT / --seed-compat.
        if config.seed_compat and state.is_training():
            raise Unavailable(f"{title} is training and unavailable; try again later")

    @bp.get(f"/{name}/about", name=f"{name}_about")
    async def about(request: Request) -> HTTPResponse:
        return json({
            "text": cls.description, "name": name, "title": title, "labels": list(cls.labels),
        })

    @bp.get(f"/{name}/train", name=f"{name}_train")
    async def train(request: Request) -> HTTPResponse:
        refuse_while_training()
        supervisor: Supervisor = request.app.ctx.supervisor
        pid = await supervisor.start(name, title)
        return json({
            "text": f"Training of {title} started.", "state": "training", "pid": pid,
            "status_url": f"/{name}/train/status",
        })

    @bp.get(f"/{name}/train/status", name=f"{name}_status")
    async def status(request: Request) -> HTTPResponse:
        refuse_while_training()
        current = state.status()
        return json({
            "accuracy": current.get("accuracy") or "", "datetime": current.get("datetime") or "",
            "state": current.get("state", "idle"), "progress": current.get("progress"),
            "error": current.get("error"), "weights_version": current.get("weights_version"),
            "stage": current.get("stage"), "started": current.get("started"),
            "finished": current.get("finished"),
        })

    @bp.post(f"/{name}/classify", name=f"{name}_classify", stream=True)
    async def classify(request: Request) -> HTTPResponse:
        refuse_while_training()
        payload = await read_json(request, config.max_body)
        models: Models = request.app.ctx.models
        if not models.ready:
            raise Unavailable(f"{title} has no weights loaded yet; try again shortly")
        if "images" in payload and "image" not in payload:
            outcome = await models.classify(name, images_of(payload))
            results = [render(r) for r in outcome.results]
            return json({
                "numbers": [r.get("number") for r in results], "results": results,
                "weights_version": outcome.version,
            })
        outcome = await models.classify(name, [image_of(payload)])
        result = outcome.results[0]
        if not isinstance(result, Prediction):
            raise result
        return json({**render(result), "weights_version": outcome.version})


def render(result: Prediction | Exception) -> dict[str, Any]:
    if isinstance(result, Prediction):
        return {
            "number": result.label, "confidence": round(result.confidence, 6),
            "probabilities": list(result.probabilities),
        }
    return error_body(result, status_of(result))


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object, refused early when it is over ``limit`` bytes.

    The route streams, so Sanic has not read the body: a declared length over the limit is
    refused before a byte of it is read, and a chunked body is cut off at the limit.
    """
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"the body must be JSON (Content-Type: application/json), not {media}"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        refuse_body(request, limit)
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
    try:
        payload = jsonlib.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidRequest('the body must be a JSON object such as {"image": "<base64>"}')
    return payload


def refuse_body(request: Request, limit: int) -> None:
    # Do not invite the client to send the body ("100 Continue") after refusing it.
    stream = cast(Http | None, request.stream)
    if stream is not None:
        stream.expecting_continue = False
    raise BodyTooLarge(f"the request body is larger than the limit of {limit:,} bytes")


def image_of(payload: dict[str, Any]) -> bytes:
    if "image" not in payload:
        raise InvalidRequest('the JSON body needs an "image" key: base64 of an image file')
    return decode_image(payload["image"], '"image"')


def images_of(payload: dict[str, Any]) -> list[bytes]:
    images = payload["images"]
    if not isinstance(images, list) or not images:
        raise InvalidRequest('"images" must be a non-empty list of base64 strings')
    if len(images) > MAX_BATCH:
        raise InvalidRequest(f'"images" holds {len(images)} images; at most {MAX_BATCH}')
    return [decode_image(item, f'"images"[{i}]') for i, item in enumerate(images)]


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
