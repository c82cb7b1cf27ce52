"""The Open Inference Protocol (KServe V2) over REST, for every network of the registry.

    GET  /v2                                  server metadata: name, version, extensions
    GET  /v2/health/live, /v2/health/ready    200 or 400 with an empty body (no auth)
    GET  /v2/models/<net>[/versions/<v>]      model metadata: its input, outputs, version
    GET  /v2/models/<net>[/versions/<v>]/ready
    POST /v2/models/<net>[/versions/<v>]/infer

The only version a client may name is the one served (``GET /<net>/versions`` marks it); a
name without a version gets the served one too. Inference goes through the worker's
micro-batcher like ``/<net>/classify``, so both kinds of request share forward passes.
``nn_server.web.oip`` reads the requests and writes the answers; errors are the server's usual
``{"error": ..., "status": ...}``, which is the protocol's ``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty, json, raw

from nn_server import __version__
from nn_server.core.config import Config
from nn_server.engine.serving import Models
from nn_server.networks import Network, Prediction, Registry
from nn_server.networks.images import ImageError
from nn_server.store import open_store
from nn_server.web import oip
from nn_server.web.body import decompress, read_body
from nn_server.web.errors import (
    InvalidRequest,
    NotAcceptable,
    NotFound,
    Unavailable,
    UnsupportedMediaType,
    status_of,
)
from nn_server.web.requests import MAX_BATCH
from nn_server.web.routes.verbs import read

SERVER_NAME = "nn-server"
PUBLIC_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
"""Probes for load balancers and Kubernetes, like ``/health``: they say only yes or no."""
NO_BODY = ""
"""``ctx_answers`` of the health routes: an empty body, acceptable whatever Accept says."""
MODEL = "/v2/models/<model:str>"
VERSION = MODEL + "/versions/<version:str>"
REPORTED_ERRORS = 5
"""Bad images named in an inference error message; the count says how many there were."""


def inference_blueprint(config: Config, networks: Registry) -> Blueprint:
    bp = Blueprint("inference")
    stores = {name: open_store(config.location, name) for name in networks}
    metadata = {"name": SERVER_NAME, "version": __version__, "extensions": list(oip.EXTENSIONS)}

    def network_of(model: str) -> type[Network]:
        """The network named ``model``; 404 naming the models when there is none."""
        cls = networks.get(model)
        if cls is None:
            raise NotFound(f"unknown model {model!r}; the models are {', '.join(networks)}")
        return cls

    async def served(request: Request, model: str, version: str | None) -> type[Network]:
        """The network named ``model``; 404 when ``version`` is not the one served, 503
        while this worker is still loading the one just served."""
        cls = network_of(model)
        if version is None:
            return cls
        models: Models = request.app.ctx.models
        loaded = models.versions()[cls.name]
        if version == loaded:
            return cls
        # Redis in a cluster: in a thread, so a hung one stalls only this request.
        pointer = await asyncio.to_thread(stores[cls.name].pointer)
        if pointer is not None and pointer.version == version:
            raise Unavailable(f"{model} version {version} is still loading; retry shortly")
        raise NotFound(f"{model} version {version!r} is not served; it serves "
                       f"{pointer.version if pointer else 'none yet'} "
                       f"(POST /{model}/versions/<v>/serve serves another)")

    @read(bp, "/v2", name="v2_server")
    async def server_metadata(request: Request) -> HTTPResponse:
        return json(metadata)

    @read(bp, "/v2/health/live", name="v2_live", ctx_answers=NO_BODY)
    async def live(request: Request) -> HTTPResponse:
        return empty(200)

    @read(bp, "/v2/health/ready", name="v2_ready", ctx_answers=NO_BODY)
    async def ready(request: Request) -> HTTPResponse:
        models: Models = request.app.ctx.models
        return empty(200 if models.ready else 400)

    @read(bp, MODEL, name="v2_model")
    @read(bp, VERSION, name="v2_model_version")
    async def model_metadata(request: Request, model: str,
                             version: str | None = None) -> HTTPResponse:
        cls = await served(request, model, version)
        models: Models = request.app.ctx.models
        return json(oip.model_metadata(cls, models.versions()[cls.name], config.runtime))

    @read(bp, MODEL + "/ready", name="v2_model_ready", ctx_answers=NO_BODY)
    @read(bp, VERSION + "/ready", name="v2_model_version_ready", ctx_answers=NO_BODY)
    async def model_ready(request: Request, model: str,
                          version: str | None = None) -> HTTPResponse:
        cls = network_of(model)
        models: Models = request.app.ctx.models
        loaded = models.versions()[cls.name]
        ok = loaded is not None and version in (None, loaded)
        return empty(200 if ok else 400)

    # ctx_answers: JSON or, when outputs are asked for in binary, octet-stream; the handler
    # checks Accept itself once it knows which.
    @bp.post(MODEL + "/infer", name="v2_infer", stream=True, ctx_answers=oip.BINARY_MEDIA)
    @bp.post(VERSION + "/infer", name="v2_infer_version", stream=True,
             ctx_answers=oip.BINARY_MEDIA)
    async def infer(request: Request, model: str, version: str | None = None) -> HTTPResponse:
        cls = await served(request, model, version)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media and media not in (oip.JSON_MEDIA, oip.BINARY_MEDIA) \
                and not media.endswith("+json"):
            raise UnsupportedMediaType(
                f"the body must be JSON ({oip.JSON_MEDIA}), or JSON and binary tensors "
                f"({oip.BINARY_MEDIA} with {oip.HEADER_LENGTH}), not {media}")
        body = decompress(request, await read_body(request, config.max_body), config.max_body)
        parsed = oip.parse_request(body, request.headers.get(oip.HEADER_LENGTH),
                                   classes=len(cls.labels), max_batch=MAX_BATCH)
        binary = any(output.binary for output in parsed.outputs)
        answers = oip.BINARY_MEDIA if binary else oip.JSON_MEDIA
        accept = request.headers.get("accept", "").strip()
        if accept and not request.accept.match(answers):
            raise NotAcceptable(f"the answer is {answers}; Accept was {accept!r}")
        models: Models = request.app.ctx.models
        if not models.is_ready(cls.name):
            raise Unavailable(f"{cls.title} has no weights loaded; train it or try again shortly")
        outcome = await models.classify(cls.name, parsed.images)
        predictions = predictions_of(outcome.results)
        if version is not None and outcome.version != version:
            raise Unavailable(f"{model} switched from version {version} to {outcome.version} "
                              "during the request; retry")
        answer, header_length = oip.encode_response(cls, outcome.version, parsed, predictions)
        headers = {} if header_length is None else {oip.HEADER_LENGTH: str(header_length)}
        return raw(answer, content_type=answers, headers=headers)

    return bp


def predictions_of(results: Sequence[Prediction | ImageError]) -> list[Prediction]:
    """Every image's prediction. The protocol has no per-element errors, so one bad image
    fails the request: 400 (415 for a format we do not read, like the first bad one), and
    the message names the bad elements by index."""
    bad = [(i, r) for i, r in enumerate(results) if not isinstance(r, Prediction)]
    if not bad:
        return list(results)  # type: ignore[arg-type]  # no errors left, only predictions
    named = "; ".join(f'"{oip.INPUT}"[{i}]: {error}' for i, error in bad[:REPORTED_ERRORS])
    more = "; ..." if len(bad) > REPORTED_ERRORS else ""
    message = f"{len(bad)} of {len(results)} images cannot be classified: {named}{more}"
    if status_of(bad[0][1]) == UnsupportedMediaType.status_code:
        raise UnsupportedMediaType(message)
    raise InvalidRequest(message)
