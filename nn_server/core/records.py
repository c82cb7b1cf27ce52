"""A version's record: what is known about one set of weights, from the training that made
it to the store that keeps it. One typed value, written as the JSON file beside the weights
(``lenet.params`` → ``lenet.json``) and read back by the store, the network (its shipped
weights) and the API; nobody passes the raw dict around.

The training fills in how the weights were made; the store adds when and how it got them
(``added``, ``source``) and whether the promotion rule served them (``promoted``,
``reason``). Keys this version of the code does not know are kept as they were, so a record
written by a newer server survives a round trip through an older one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nn_server.core.files import write_atomic

Source = Literal["shipped", "seed", "trained"]
SOURCES: tuple[Source, ...] = ("shipped", "seed", "trained")
Precision = Literal["int8", "float"]
PRECISIONS: tuple[Precision, ...] = ("int8", "float")


@dataclass(frozen=True)
class VersionRecord:
    """One set of weights: how it was trained and where it came from."""

    network: str | None = None
    accuracy: str | None = None
    """Test accuracy in percent as text, the seed's format: ``"99.58"``."""
    test_accuracy: float | None = None
    """The same, 0..1, for comparisons."""
    datetime: str | None = None
    """When the training finished, ``YYYY-MM-DD HH:MM:SS``."""
    epochs: int | None = None
    duration_s: float | None = None
    dataset: str | None = None
    train_samples: int | None = None
    test_samples: int | None = None
    recipe: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None
    data_sha256: dict[str, str] | None = None
    versions: dict[str, str] | None = None
    """Python and library versions of the training."""
    device: str | None = None
    weights_version: str | None = None
    command: str | None = None
    """How to reproduce the weights."""
    served_accuracy: float | None = None
    """The served weights' accuracy on the same test images, when the promotion rule ran."""
    accuracies: dict[str, str] | None = None
    """Test accuracy in percent of the ONNX export in each precision it can be served in,
    ``{"float": "99.55", "int8": "99.54"}`` (``nn_server.networks.precision``)."""
    precision: Precision | None = None
    """What ONNX Runtime serves it in by that measurement: ``int8`` where int8 is within 0.1
    points of float, else ``float``; None: never measured, so float."""
    # -- what the store adds -------------------------------------------------------------
    added: str | None = None
    """When the store got these weights."""
    source: Source | None = None
    """``shipped`` (came with the package), ``seed`` (NN_SEED_WEIGHTS) or ``trained``."""
    promoted: bool | None = None
    """Whether the promotion rule let them be served (None: never judged, as shipped)."""
    reason: str | None = None
    """Why they were not promoted."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Keys this code does not know, kept for the round trip."""

    def kept(self, *, added: str, source: Source, promoted: bool = True,
             reason: str | None = None) -> VersionRecord:
        """This record as the store keeps it."""
        return dataclasses.replace(self, added=added, source=source, promoted=promoted,
                                   reason=reason)

    def measured(self, accuracies: Mapping[str, str], precision: Precision) -> VersionRecord:
        """This record with what ``nn_server.networks.precision`` measured."""
        return dataclasses.replace(self, accuracies=dict(accuracies), precision=precision)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                continue
            # The store's verdict is always written (null: no reason); the rest only when
            # known, so a training's record reads as it did.
            if value is not None or (f.name in ("promoted", "reason") and self.added):
                data[f.name] = value
        return {**self.extra, **data}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VersionRecord:
        """The record ``data`` holds; a value of the wrong type reads as unknown."""
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        for name in known:
            value = data.get(name)
            values[name] = value if _fits(name, value) else None
        source = values["source"]
        values["source"] = source if source in SOURCES else None
        if values["precision"] not in PRECISIONS:
            values["precision"] = None
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)

    @classmethod
    def read(cls, weights: Path) -> VersionRecord:
        """The record beside ``weights``; an empty one when there is none or it is not
        readable (weights without a record still serve)."""
        try:
            data = json.loads(Path(weights).with_suffix(".json").read_text())
        except (OSError, ValueError):
            return cls()
        return cls.from_json(data) if isinstance(data, dict) else cls()

    def write(self, weights: Path) -> None:
        """Beside ``weights``, atomically."""
        write_atomic(Path(weights).with_suffix(".json"),
                     json.dumps(self.to_json(), indent=2).encode())


_TYPES: dict[str, type | tuple[type, ...]] = {
    "test_accuracy": (int, float), "duration_s": (int, float), "served_accuracy": (int, float),
    "epochs": int, "train_samples": int, "test_samples": int, "promoted": bool,
    "recipe": dict, "history": list, "data_sha256": dict, "versions": dict, "accuracies": dict,
}


def _fits(name: str, value: object) -> bool:
    if value is None:
        return True
    expected = _TYPES.get(name, str)
    if isinstance(value, bool) and expected is not bool:
        return False  # JSON true is not a count
    return isinstance(value, expected)
