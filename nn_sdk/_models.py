"""Typed results: each server answer becomes a frozen dataclass, never a bare dict.

The ``from_json`` constructors accept both the current server's answers and the seed's
smaller ones (only ``text``, ``number``, ``accuracy``/``datetime``), so the SDK also works
against a seed-compatible server. A missing key becomes ``None`` or an empty tuple; a key
of the wrong type raises ``ProtocolError``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nn_sdk._exceptions import ProtocolError

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_SEED_NETWORK_LINE = re.compile(r"^(?P<title>.*?)\s+url:\s*(?P<url>\S+)$")


@dataclass(frozen=True)
class NetworkSummary:
    """One entry of ``list_networks()``: the name used in URLs, a title and the URL path."""

    name: str
    title: str
    url: str

    @classmethod
    def from_seed_line(cls, line: str) -> NetworkSummary:
        """Parse the seed's ``"LeNet url:/lenet"``."""
        match = _SEED_NETWORK_LINE.match(line.strip())
        if match is None:
            raise ProtocolError(f"unexpected network entry: {line!r}")
        url = match["url"]
        return cls(name=url.strip("/").split("/")[-1], title=match["title"], url=url)


def networks_from_json(data: Mapping[str, Any]) -> tuple[NetworkSummary, ...]:
    """The networks in a ``GET /list_nn`` answer."""
    entries = data.get("networks")
    if isinstance(entries, list):
        return tuple(
            NetworkSummary(
                name=_str(entry, "name"), title=_str(entry, "title"), url=_str(entry, "url")
            )
            for entry in entries
            if isinstance(entry, Mapping)
        )
    lines = data.get("text")
    if not isinstance(lines, list):
        raise ProtocolError("the network list has neither 'networks' nor 'text'")
    return tuple(NetworkSummary.from_seed_line(str(line)) for line in lines)


@dataclass(frozen=True)
class NetworkInfo:
    """``about()``: a network's description and the labels it can answer."""

    name: str
    title: str
    description: str
    labels: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any], network: str) -> NetworkInfo:
        name = _opt_str(data, "name") or network
        return cls(
            name=name,
            title=_opt_str(data, "title") or name,
            description=_str(data, "text"),
            labels=tuple(str(label) for label in _opt_list(data, "labels")),
        )


@dataclass(frozen=True)
class TrainingStarted:
    """``train()``: the server accepted the request and training runs in the background."""

    network: str
    message: str
    state: str = "training"

    @classmethod
    def from_json(cls, data: Mapping[str, Any], network: str) -> TrainingStarted:
        return cls(
            network=network,
            message=_str(data, "text"),
            state=_opt_str(data, "state") or "training",
        )


@dataclass(frozen=True)
class TrainingProgress:
    """Where a running training is: epoch and batch counters, running metrics, timing.

    ``fraction`` is the share of the whole run done, from 0.0 to 1.0.
    """

    fraction: float
    epoch: int | None = None
    epochs: int | None = None
    batch: int | None = None
    batches: int | None = None
    loss: float | None = None
    accuracy: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainingProgress:
        fraction = _opt_float(data, "fraction")
        epoch, epochs = _opt_int(data, "epoch"), _opt_int(data, "epochs")
        if fraction is None:
            fraction = (epoch or 0) / epochs if epochs else 0.0
        return cls(
            fraction=min(max(fraction, 0.0), 1.0),
            epoch=epoch,
            epochs=epochs,
            batch=_opt_int(data, "batch"),
            batches=_opt_int(data, "batches"),
            loss=_opt_float(data, "loss"),
            accuracy=_opt_float(data, "accuracy"),
            elapsed_s=_opt_float(data, "elapsed_s"),
            eta_s=_opt_float(data, "eta_s"),
        )


@dataclass(frozen=True)
class EpochResult:
    """One finished epoch of a training: its mean training loss and accuracy (0..1)."""

    epoch: int
    loss: float | None = None
    accuracy: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EpochResult:
        return cls(epoch=_opt_int(data, "epoch") or 0, loss=_opt_float(data, "loss"),
                   accuracy=_opt_float(data, "accuracy"))


@dataclass(frozen=True)
class TrainingStatus:
    """``status()``: the last successful training and what the network is doing now.

    ``accuracy`` is the test accuracy in percent and ``datetime`` when that training
    finished (both ``None`` if the server has no record). ``state`` is ``"idle"``,
    ``"training"`` or ``"failed"``; ``progress`` is set while training, ``error`` after a
    failure. ``weights_version`` identifies the weights being served. After a training,
    ``version`` is the version it made and ``promoted`` whether that is what is served now;
    if not, ``reason`` says why (it was less accurate than the served weights).
    ``history`` holds each finished epoch's loss and accuracy.
    """

    accuracy: float | None
    datetime: dt.datetime | None
    state: str = "idle"
    progress: TrainingProgress | None = None
    error: str | None = None
    weights_version: str | None = None
    version: str | None = None
    promoted: bool | None = None
    reason: str | None = None
    history: tuple[EpochResult, ...] = field(default=(), repr=False)

    @property
    def is_training(self) -> bool:
        return self.state == "training"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainingStatus:
        progress = data.get("progress")
        if not isinstance(progress, Mapping):
            progress = None
        promoted = data.get("promoted")
        return cls(
            accuracy=_opt_float(data, "accuracy"),
            datetime=_opt_datetime(data, "datetime"),
            state=_opt_str(data, "state") or "idle",
            progress=None if progress is None else TrainingProgress.from_json(progress),
            error=_opt_str(data, "error"),
            weights_version=_opt_str(data, "weights_version"),
            version=_opt_str(data, "version"),
            promoted=promoted if isinstance(promoted, bool) else None,
            reason=_opt_str(data, "reason"),
            history=tuple(EpochResult.from_json(e) for e in _opt_list(data, "history")
                          if isinstance(e, Mapping)),
        )

    @classmethod
    def training(cls) -> TrainingStatus:
        """What a seed-compatible server's 503 "network is training" tells us."""
        return cls(accuracy=None, datetime=None, state="training")


@dataclass(frozen=True)
class Classification:
    """``classify()``: the answer's ``label`` (``"7"``, ``"Coat"``) and its ``index`` in
    ``about().labels``, how sure the network is, the probability of every label in that
    order, and which weights answered. ``number`` is LeNet's original key for its digit
    (``None`` for other networks)."""

    label: str
    index: int | None = None
    confidence: float | None = None
    probabilities: tuple[float, ...] = field(default=(), repr=False)
    weights_version: str | None = None
    number: str | None = field(default=None, repr=False)
    top: tuple[LabelProbability, ...] = field(default=(), repr=False)
    """The k most probable labels, most probable first, when asked for with ``top_k``."""

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], weights_version: str | None = None
    ) -> Classification:
        number = _opt_str(data, "number")
        # A seed server answers only {"number": "7"}.
        label = _opt_str(data, "label") or number
        if label is None:
            raise ProtocolError(f"the answer has no 'label': {dict(data)!r:.200}")
        return cls(
            label=label,
            index=_opt_int(data, "index"),
            confidence=_opt_float(data, "confidence"),
            probabilities=tuple(float(p) for p in _opt_list(data, "probabilities")),
            weights_version=_opt_str(data, "weights_version") or weights_version,
            number=number,
            top=tuple(LabelProbability(_str(entry, "label"), _opt_float(entry, "probability")
                                       or 0.0)
                      for entry in _opt_list(data, "top") if isinstance(entry, Mapping)),
        )


@dataclass(frozen=True)
class LabelProbability:
    """One of ``Classification.top``: a label and its probability."""

    label: str
    probability: float


@dataclass(frozen=True)
class Version:
    """One kept version of a network's weights (``versions()``)."""

    version: str
    accuracy: float | None = None
    datetime: dt.datetime | None = None
    epochs: int | None = None
    duration_s: float | None = None
    served: bool = False
    promoted: bool = True
    reason: str | None = None
    source: str | None = None
    added: dt.datetime | None = None
    accuracies: Mapping[str, float] = field(default_factory=dict)
    """Test accuracy in percent per precision it was measured in: ``{"float": 99.55,
    "int8": 99.54}``."""
    precision: str = "float"
    """What the server's workers compute it in: ``int8`` where its int8 form scored within
    0.1 points of float, else ``float``."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Version:
        return cls(
            version=_str(data, "version"), accuracy=_opt_float(data, "accuracy"),
            datetime=_opt_datetime(data, "datetime"), epochs=_opt_int(data, "epochs"),
            duration_s=_opt_float(data, "duration_s"), served=data.get("served") is True,
            promoted=data.get("promoted") is not False, reason=_opt_str(data, "reason"),
            source=_opt_str(data, "source"), added=_opt_datetime(data, "added"),
            accuracies=_accuracies(data),
            precision=_opt_str(data, "precision") or "float",
        )


@dataclass(frozen=True)
class Versions:
    """``versions()``: every kept version, newest first, and which one is served."""

    network: str
    served: str | None
    versions: tuple[Version, ...]
    previous: str | None = None
    """The version served before the current one: what a rollback would serve."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any], network: str) -> Versions:
        return cls(
            network=network, served=_opt_str(data, "served"),
            versions=tuple(Version.from_json(v) for v in _opt_list(data, "versions")
                           if isinstance(v, Mapping)),
            previous=_opt_str(data, "previous"),
        )


# -- lenient readers: the wire carries numbers as strings in seed keys --------------------


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"the server's answer has no string {key!r}: {dict(data)!r:.200}")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _opt_list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


def _accuracies(data: Mapping[str, Any]) -> dict[str, float]:
    measured = data.get("accuracies") or {}
    if not isinstance(measured, Mapping):
        raise ProtocolError(f"'accuracies' is not an object: {measured!r}")
    figures = {str(precision): _opt_float(measured, precision) for precision in measured}
    return {precision: value for precision, value in figures.items() if value is not None}


def _opt_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ProtocolError(f"{key!r} is not a number: {value!r}") from None


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    number = _opt_float(data, key)
    return None if number is None else int(number)


def _opt_datetime(data: Mapping[str, Any], key: str) -> dt.datetime | None:
    value = _opt_str(data, key)
    if value is None:
        return None
    try:
        return dt.datetime.strptime(value, DATETIME_FORMAT)
    except ValueError:
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
