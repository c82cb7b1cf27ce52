"""The seed's routes, generated from the network registry: ``/list_nn`` and, per network,
``/<name>/about``, ``/<name>/train``, ``/<name>/train/status`` and ``/<name>/classify``."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from nn_server.body import read_json
from nn_server.config import Config
from nn_server.errors import InvalidRequest, Unavailable, error_body, status_of
from nn_server.networks import REGISTRY, Network, Prediction
from nn_server.serving import Models
from nn_server.state import NetworkState
from nn_server.supervisor import Supervisor

# Images per batch request. The body limit bounds a request too; this keeps one request
# from holding a worker for seconds (1,024 digits take ~0.2 s).
MAX_BATCH = 1024


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
            return json(await classify_many(models, name, images_of(payload)))
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


async def classify_many(
    models: Models, name: str, images: list[bytes | InvalidRequest]
) -> dict[str, Any]:
    """The batch form: every image answered in its own slot, bad ones with their error."""
    decoded = [image for image in images if isinstance(image, bytes)]
    outcome = await models.classify(name, decoded) if decoded else None
    answers = iter(outcome.results if outcome else [])
    results = [render(image if isinstance(image, InvalidRequest) else next(answers))
               for image in images]
    return {
        "numbers": [r.get("number") for r in results], "results": results,
        "weights_version": outcome.version if outcome else models.versions()[name],
    }


def image_of(payload: dict[str, Any]) -> bytes:
    if "image" not in payload:
        raise InvalidRequest('the JSON body needs an "image" key: base64 of an image file')
    return decode_image(payload["image"], '"image"')


def images_of(payload: dict[str, Any]) -> list[bytes | InvalidRequest]:
    """Each image's bytes, or the reason it is not base64 (reported in its own slot)."""
    images = payload["images"]
    if not isinstance(images, list) or not images:
        raise InvalidRequest('"images" must be a non-empty list of base64 strings')
    if len(images) > MAX_BATCH:
        raise InvalidRequest(f'"images" holds {len(images)} images; at most {MAX_BATCH}')
    decoded: list[bytes | InvalidRequest] = []
    for i, item in enumerate(images):
        try:
            decoded.append(decode_image(item, f'"images"[{i}]'))
        except InvalidRequest as exc:
            decoded.append(exc)
    return decoded


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
