"""The seed's routes, generated from the network registry: ``/list_nn`` and, per network,
``/<name>/about``, ``/<name>/train``, ``/<name>/train/status`` and ``/<name>/classify``.
Each network answers for itself: one without weights answers 503 while the others serve."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from nn_server.core.config import Config
from nn_server.engine.serving import Models
from nn_server.networks import REGISTRY, Network, Prediction
from nn_server.store import open_store
from nn_server.store.status import TrainingStatus
from nn_server.training.command import PROMOTE
from nn_server.training.supervisor import Supervisor, TrainingRequest
from nn_server.web.body import decode_image, parse_object, read_json
from nn_server.web.errors import InvalidRequest, Unavailable, error_body, status_of
from nn_server.web.routes.verbs import read

# Images per batch request. The body limit bounds a request too; this keeps one request
# from holding a worker for seconds (1,024 digits take ~0.2 s).
MAX_BATCH = 1024
MAX_EPOCHS = 100
"""Most epochs a train request may ask for."""


def networks_blueprint(config: Config) -> Blueprint:
    bp = Blueprint("networks")

    @read(bp, "/list_nn", name="list_nn")
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
    state = open_store(config.state_dir, name)

    def refuse_while_training() -> None:
        # The original server's behaviour, kept behind NN_SEED_COMPAT / --seed-compat.
        if config.seed_compat and state.is_training():
            raise Unavailable(f"{title} is training and unavailable; try again later")

    shipped = cls.shipped_record()
    described = {
        "text": cls.description, "name": name, "title": title, "labels": list(cls.labels),
        "input_shape": list(cls.input_shape), "dataset": cls.dataset.title,
        "shipped_weights": {
            key: value for key, value in shipped.to_json().items()
            if key in ("accuracy", "datetime", "epochs", "duration_s", "weights_version",
                       "command")
        },
    }

    @read(bp, f"/{name}/about", name=f"{name}_about")
    async def about(request: Request) -> HTTPResponse:
        return json(described)

    # ctx_changes_state marks the routes that change what the server does (training,
    # serving a version): only they need an admin and a same-site browser. GET is the
    # original contract; POST is the proper method for it. Neither takes HEAD: HEAD must be
    # safe, and these are not.
    @bp.route(  # type: ignore[untyped-decorator]  # Sanic types only get/post/... fully
        f"/{name}/train", methods=["GET", "POST"], name=f"{name}_train",
        ctx_changes_state=True)
    async def train(request: Request) -> HTTPResponse:
        refuse_while_training()
        supervisor: Supervisor = request.app.ctx.supervisor
        pid = await supervisor.start(name, title, training_request(request))
        return json({
            "text": f"Training of {title} started.", "state": "training", "pid": pid,
            "status_url": f"/{name}/train/status",
        })

    @read(bp, f"/{name}/train/status", name=f"{name}_status")
    async def status(request: Request) -> HTTPResponse:
        refuse_while_training()
        pointer = state.pointer()
        return json(status_answer(state.status(), pointer.version if pointer else None))

    @bp.post(f"/{name}/classify", name=f"{name}_classify", stream=True)
    async def classify(request: Request) -> HTTPResponse:
        refuse_while_training()
        payload = await read_json(request, config.max_body)
        models: Models = request.app.ctx.models
        if not models.is_ready(name):
            raise Unavailable(f"{title} has no weights loaded; train it or try again shortly")
        top_k = top_k_of(payload, cls)
        if "images" in payload and "image" not in payload:
            return json(await classify_many(models, cls, images_of(payload), top_k))
        outcome = await models.classify(name, [image_of(payload)])
        result = outcome.results[0]
        if not isinstance(result, Prediction):
            raise result
        return json({**render(cls, result, top_k), "weights_version": outcome.version})


def status_answer(status: TrainingStatus, weights_version: str | None) -> dict[str, Any]:
    """``GET /<net>/train/status``: the status, the seed's keys as strings ("" when none)."""
    return {
        **status.to_json(), "accuracy": status.accuracy or "", "datetime": status.datetime or "",
        "weights_version": weights_version,
    }


def render(cls: type[Network], result: Prediction | Exception,
           top_k: int | None = None) -> dict[str, Any]:
    if not isinstance(result, Prediction):
        return error_body(result, status_of(result))
    answer = cls.answer(result)
    if top_k is not None:
        ranked = sorted(range(len(result.probabilities)),
                        key=lambda i: result.probabilities[i], reverse=True)
        answer["top"] = [{"label": cls.labels[i], "probability": result.probabilities[i]}
                         for i in ranked[:top_k]]
    return answer


async def classify_many(
    models: Models, cls: type[Network], images: list[bytes | InvalidRequest],
    top_k: int | None = None,
) -> dict[str, Any]:
    """The batch form: every image answered in its own slot, bad ones with their error."""
    decoded = [image for image in images if isinstance(image, bytes)]
    outcome = await models.classify(cls.name, decoded) if decoded else None
    answers = iter(outcome.results if outcome else [])
    results = [render(cls, image if isinstance(image, InvalidRequest) else next(answers), top_k)
               for image in images]
    answer: dict[str, Any] = {"labels": [r.get("label") for r in results]}
    if cls.label_key is not None:  # LeNet's "numbers", beside its answers' "number"
        answer[f"{cls.label_key}s"] = [r.get(cls.label_key) for r in results]
    return {
        **answer, "results": results,
        "weights_version": outcome.version if outcome else models.versions()[cls.name],
    }


def top_k_of(payload: dict[str, Any], cls: type[Network]) -> int | None:
    """``"top_k": k`` asks for the k most probable labels (1 to the number of labels)."""
    if "top_k" not in payload:
        return None
    k = payload["top_k"]
    classes = len(cls.labels)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= classes:
        raise InvalidRequest(f'"top_k" must be a whole number from 1 to {classes}, not {k!r}')
    return k


def training_request(request: Request) -> TrainingRequest:
    """``?epochs=N&promote=always`` (or the same keys in a POST's JSON body)."""
    query = request.get_args(keep_blank_values=True)  # "?promote=" is a bad value, not none
    repeated = sorted(key for key, values in query.items() if len(values) > 1)
    if repeated:
        raise InvalidRequest(f"training option(s) given more than once: {', '.join(repeated)}")
    options: dict[str, Any] = {key: query.get(key) for key in query}
    if request.method == "POST" and request.body:
        options.update(parse_object(request.body))
    unknown = set(options) - {"epochs", "promote"}
    if unknown:
        raise InvalidRequest(f"unknown training option(s): {', '.join(sorted(unknown))}; "
                             "use epochs and promote")
    epochs = options.get("epochs")
    if epochs is not None:
        if isinstance(epochs, str) and epochs.isdigit():
            epochs = int(epochs)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or \
                not 1 <= epochs <= MAX_EPOCHS:
            raise InvalidRequest(
                f'"epochs" must be a whole number from 1 to {MAX_EPOCHS}, not {epochs!r}')
    promote = options.get("promote", "better")
    if promote not in PROMOTE:
        raise InvalidRequest(f'"promote" must be "better" or "always", not {promote!r}')
    return TrainingRequest(epochs=epochs, promote=promote)


def image_of(payload: dict[str, Any]) -> bytes:
    if "image" not in payload:
        raise InvalidRequest('the JSON body needs an "image" key: base64 of an image file')
    return decode_image(payload["image"], '"image"')


def images_of(payload: dict[str, Any]) -> list[bytes | InvalidRequest]:
    """Each image's bytes, or the reason it is not base64 (reported in its own slot). An
    item that is not a string at all makes the request malformed (400)."""
    images = payload["images"]
    if not isinstance(images, list) or not images:
        raise InvalidRequest('"images" must be a non-empty list of base64 strings')
    if len(images) > MAX_BATCH:
        raise InvalidRequest(f'"images" holds {len(images)} images; at most {MAX_BATCH}')
    strays = [i for i, item in enumerate(images) if not isinstance(item, str)]
    if strays:
        raise InvalidRequest(f'"images" must hold base64 strings only; item {strays[0]} is '
                             f"a {type(images[strays[0]]).__name__}")
    decoded: list[bytes | InvalidRequest] = []
    for i, item in enumerate(images):
        try:
            decoded.append(decode_image(item, f'"images"[{i}]'))
        except InvalidRequest as exc:
            decoded.append(exc)
    return decoded
