"""The seed's routes, one set for every network of the registry: ``/list_nn`` and
``/<network>/about``, ``/<network>/train``, ``/<network>/train/status`` and
``/<network>/classify``. A name the registry does not hold is a 404 that lists the ones it
does; each network answers for itself: one without weights answers 503 while the others
serve."""

from __future__ import annotations

import asyncio
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from nn_server.core.config import Config
from nn_server.engine.serving import Models
from nn_server.networks import Network, Prediction, Registry
from nn_server.store import open_store
from nn_server.training.supervisor import Supervisor
from nn_server.web import answers
from nn_server.web.body import is_image_media, media_of, parse_object, read_image, read_json
from nn_server.web.errors import Unavailable
from nn_server.web.requests import (
    image_of,
    images_of,
    top_k_asked,
    training_request,
)
from nn_server.web.routes.verbs import NETWORK, read

SHIPPED_KEYS = ("accuracy", "datetime", "epochs", "duration_s", "weights_version", "command")


def networks_blueprint(config: Config, networks: Registry) -> Blueprint:
    bp = Blueprint("networks")
    stores = {name: open_store(config.location, name) for name in networks}
    described = {name: about_network(cls) for name, cls in networks.items()}
    listed = [{"name": cls.name, "title": cls.title, "url": f"/{cls.name}"}
              for cls in networks.values()]

    async def refuse_while_training(cls: type[Network]) -> None:
        # The original server's behaviour, kept behind NN_SEED_COMPAT / --seed-compat. The
        # store's calls block (Redis): in a thread, so a hung Redis stalls only this request.
        if config.seed_compat and await asyncio.to_thread(stores[cls.name].is_training):
            raise Unavailable(f"{cls.title} is training and unavailable; try again later")

    @read(bp, "/list_nn", name="list_nn")
    async def list_nn(request: Request) -> HTTPResponse:
        return json({"text": [f"{n['title']} url:{n['url']}" for n in listed],
                     "networks": listed})

    @read(bp, f"/{NETWORK}/about", name="about")
    async def about(request: Request, network: str) -> HTTPResponse:
        return json(described[networks.network(network).name])

    # ctx_changes_state marks the routes that change what the server does (training,
    # serving a version): only they need an admin and a same-site browser. GET is the
    # original contract; POST is the proper method for it. Neither takes HEAD: HEAD must be
    # safe, and these are not.
    @bp.route(  # type: ignore[untyped-decorator]  # Sanic types only get/post/... fully
        f"/{NETWORK}/train", methods=["GET", "POST"], name="train", ctx_changes_state=True)
    async def train(request: Request, network: str) -> HTTPResponse:
        cls = networks.network(network)
        await refuse_while_training(cls)
        body = parse_object(request.body) if request.method == "POST" and request.body \
            else None
        # Blank values kept: "?promote=" is a bad value, not none.
        asked = training_request(request.get_args(keep_blank_values=True), body)
        supervisor: Supervisor = request.app.ctx.supervisor
        pid = await supervisor.start(cls.name, cls.title, asked)
        return json({
            "text": f"Training of {cls.title} started.", "state": "training", "pid": pid,
            "status_url": f"/{cls.name}/train/status",
        })

    @read(bp, f"/{NETWORK}/train/status", name="train_status")
    async def status(request: Request, network: str) -> HTTPResponse:
        cls = networks.network(network)
        await refuse_while_training(cls)
        store = stores[cls.name]
        pointer, status = await asyncio.to_thread(lambda: (store.pointer(), store.status()))
        return json(answers.training_status(status, pointer.version if pointer else None))

    @bp.post(f"/{NETWORK}/classify", name="classify", stream=True)
    async def classify(request: Request, network: str) -> HTTPResponse:
        cls = networks.network(network)
        await refuse_while_training(cls)
        raw = is_image_media(media_of(request))  # the image file itself, as TorchServe takes
        payload = {} if raw else await read_json(
            request, config.max_body, " or an image file (Content-Type: image/png, …)")
        image = await read_image(request, config.max_body) if raw else b""
        models: Models = request.app.ctx.models
        if not models.is_ready(cls.name):
            raise Unavailable(f"{cls.title} has no weights loaded; train it or try again shortly")
        top_k = top_k_asked(request.get_args(keep_blank_values=True), payload, len(cls.labels))
        if "images" in payload and "image" not in payload:
            images = images_of(payload)
            decoded = [image for image in images if isinstance(image, bytes)]
            outcome = await models.classify(cls.name, decoded) if decoded else None
            return json(answers.batch(cls, images, outcome, models.versions()[cls.name],
                                      top_k))
        outcome = await models.classify(cls.name, [image if raw else image_of(payload)])
        [result] = outcome.results
        if not isinstance(result, Prediction):
            raise result
        return json({**answers.prediction(cls, result, top_k),
                     "weights_version": outcome.version})

    return bp


def about_network(cls: type[Network]) -> dict[str, Any]:
    shipped = cls.shipped_record().to_json()
    return {
        "text": cls.description, "name": cls.name, "title": cls.title,
        "labels": list(cls.labels), "input_shape": list(cls.input_shape),
        "dataset": cls.dataset.title,
        "shipped_weights": {key: shipped[key] for key in SHIPPED_KEYS if key in shipped},
    }
