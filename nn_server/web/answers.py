"""The JSON answers of the seed's routes, rendered from the engine's results: the network
class says what its labels are; how they are written on the wire is decided here."""

from __future__ import annotations

from typing import Any

from nn_server.engine.serving import Outcome, Result
from nn_server.networks import Network, Prediction
from nn_server.store.status import TrainingStatus
from nn_server.web.errors import InvalidRequest, error_body, status_of


def prediction(cls: type[Network], result: Prediction, top_k: int | None = None
               ) -> dict[str, Any]:
    """One image's answer: the label (and the seed's ``number`` for LeNet), its index and
    confidence, every probability, and the ``top_k`` most probable labels when asked."""
    legacy = {} if cls.label_key is None else {cls.label_key: result.label}
    answer: dict[str, Any] = {
        **legacy, "label": result.label, "index": result.index,
        "confidence": round(result.confidence, 6),
        "probabilities": list(result.probabilities),
    }
    if top_k is not None:
        ranked = sorted(range(len(result.probabilities)),
                        key=lambda i: result.probabilities[i], reverse=True)
        answer["top"] = [{"label": cls.labels[i], "probability": result.probabilities[i]}
                         for i in ranked[:top_k]]
    return answer


def slot(cls: type[Network], result: Result | InvalidRequest, top_k: int | None
         ) -> dict[str, Any]:
    """One image's place in a batch answer: its answer, or its own error."""
    if isinstance(result, Prediction):
        return prediction(cls, result, top_k)
    return error_body(result, status_of(result))


def batch(cls: type[Network], images: list[bytes | InvalidRequest], outcome: Outcome | None,
          version: str | None, top_k: int | None) -> dict[str, Any]:
    """The batch form: every image answered in its own slot, bad ones with their error;
    ``outcome`` holds the results of the images that were decoded, in order."""
    results = iter(outcome.results if outcome else [])
    slots = [slot(cls, image if isinstance(image, InvalidRequest) else next(results), top_k)
             for image in images]
    answer: dict[str, Any] = {"labels": [s.get("label") for s in slots]}
    if cls.label_key is not None:  # LeNet's "numbers", beside its answers' "number"
        answer[f"{cls.label_key}s"] = [s.get(cls.label_key) for s in slots]
    return {**answer, "results": slots,
            "weights_version": outcome.version if outcome else version}


def training_status(status: TrainingStatus, weights_version: str | None) -> dict[str, Any]:
    """``GET /<net>/train/status``: the status, the seed's keys as strings ("" when none)."""
    return {
        **status.to_json(), "accuracy": status.accuracy or "", "datetime": status.datetime or "",
        "weights_version": weights_version,
    }
