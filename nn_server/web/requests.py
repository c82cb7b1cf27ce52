"""What a request to the seed's routes may ask, read from its JSON body and query: the images
of ``/<net>/classify`` and the options of ``/<net>/train``. Pure functions of their input,
raising ``InvalidRequest`` with the reason; the OpenAPI document takes its bounds from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nn_server.training.command import PROMOTE
from nn_server.training.supervisor import TrainingRequest
from nn_server.web.body import decode_image
from nn_server.web.errors import InvalidRequest

MAX_BATCH = 1024
"""Images per batch request. The body limit bounds a request too; this keeps one request
from holding a worker for seconds (1,024 digits take ~0.2 s)."""
MAX_EPOCHS = 100
"""Most epochs a train request may ask for."""
TRAINING_OPTIONS = ("epochs", "promote")


def image_of(payload: Mapping[str, Any]) -> bytes:
    if "image" not in payload:
        raise InvalidRequest('the JSON body needs an "image" key: base64 of an image file')
    return decode_image(payload["image"], '"image"')


def images_of(payload: Mapping[str, Any]) -> list[bytes | InvalidRequest]:
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


def top_k_of(payload: Mapping[str, Any], classes: int) -> int | None:
    """``"top_k": k`` asks for the k most probable labels (1 to the number of labels)."""
    if "top_k" not in payload:
        return None
    k = payload["top_k"]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= classes:
        raise InvalidRequest(f'"top_k" must be a whole number from 1 to {classes}, not {k!r}')
    return k


def top_k_of_query(query: Mapping[str, Sequence[str]], classes: int) -> int | None:
    """``?top_k=k``, the only query parameter classify takes (``top_k_asked``)."""
    unknown = sorted(set(query) - {"top_k"})
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s): {', '.join(unknown)}; "
                             "classify takes only top_k")
    if "top_k" not in query:
        return None
    values = query["top_k"]  # every value (Sanic's RequestParameters.get gives the first)
    if len(values) > 1:
        raise InvalidRequest("top_k is given more than once")
    value = values[0]
    return top_k_of({"top_k": int(value) if value.isdigit() and value.isascii() else value},
                    classes)


def top_k_asked(query: Mapping[str, Sequence[str]], payload: Mapping[str, Any],
                classes: int) -> int | None:
    """``top_k`` from the query (either body: a raw image has no JSON to carry it) or from
    a JSON body; where both give it, they must agree. The query is read the same way for
    both bodies, so a mistyped parameter is a 400 with either, not ignored with one."""
    from_query = top_k_of_query(query, classes)
    from_body = top_k_of(payload, classes)
    if from_query is not None and from_body is not None and from_query != from_body:
        raise InvalidRequest(f"top_k is {from_query} in the query but {from_body} in the "
                             "body; give it once")
    return from_body if from_body is not None else from_query


def training_request(query: Mapping[str, Sequence[str]],
                     body: Mapping[str, Any] | None = None) -> TrainingRequest:
    """``?epochs=N&promote=always``, or the same keys in a POST's JSON ``body``."""
    repeated = sorted(key for key, values in query.items() if len(values) > 1)
    if repeated:
        raise InvalidRequest(f"training option(s) given more than once: {', '.join(repeated)}")
    options: dict[str, Any] = {key: values[0] for key, values in query.items() if values}
    options.update(body or {})
    unknown = set(options) - set(TRAINING_OPTIONS)
    if unknown:
        raise InvalidRequest(f"unknown training option(s): {', '.join(sorted(unknown))}; "
                             f"use {' and '.join(TRAINING_OPTIONS)}")
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
