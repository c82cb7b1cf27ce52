"""The training status: one typed, immutable value, and the transitions that make new ones.

    idle ──starting──▶ training ──progressed/staged──▶ training ──finished──▶ idle
                          │                                          └─failed──▶ failed
                          └───────────────failed─────────────────────────────▶ failed

It is what ``<state dir>/<network>/status.json`` holds and what ``GET /<net>/train/status``
answers (its OpenAPI schema is generated from these classes). It is written only through
``nn_server.store.lifecycle`` (the trainer's ``TrainingLog``, the supervisor's
``record_failure`` for a trainer that died without a word); readers never do — a dead
trainer is *reported* as failed by whoever reads (``Store.status``), and recorded by the
next writer. Nothing here imports MXNet: the server's main process and its workers read
statuses too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nn_server.core.redaction import hide_paths

State = Literal["idle", "training", "failed"]
STATES: tuple[State, ...] = ("idle", "training", "failed")


@dataclass(frozen=True)
class Progress:
    """Where a running training is, after one batch: for progress bars and the status."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float
    """Mean training loss of this epoch so far."""
    accuracy: float
    """Training accuracy (0..1) of this epoch so far."""
    elapsed_s: float
    fraction: float
    """Share of the whole run done, 0..1."""
    eta_s: float | None
    """Seconds left at the pace so far; None before the first batch."""

    @classmethod
    def at(cls, epoch: int, epochs: int, batch: int, batches: int, loss: float,
           accuracy: float, elapsed_s: float) -> Progress:
        fraction = ((epoch - 1) * batches + batch) / (epochs * batches)
        eta = elapsed_s * (1 - fraction) / fraction if fraction else None
        return cls(epoch, epochs, batch, batches, loss, accuracy, elapsed_s, fraction, eta)

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "epochs": self.epochs, "batch": self.batch,
            "batches": self.batches, "loss": round(self.loss, 5),
            "accuracy": round(self.accuracy, 5), "elapsed_s": round(self.elapsed_s, 1),
            "fraction": round(self.fraction, 4),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Progress:
        eta = data.get("eta_s")
        return cls(
            int(data["epoch"]), int(data["epochs"]), int(data["batch"]), int(data["batches"]),
            float(data["loss"]), float(data["accuracy"]), float(data["elapsed_s"]),
            float(data["fraction"]), None if eta is None else float(eta),
        )


@dataclass(frozen=True)
class Epoch:
    """One finished epoch of a training: its mean loss and accuracy (for the curves)."""

    epoch: int
    loss: float
    accuracy: float

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "loss": round(self.loss, 5),
                "accuracy": round(self.accuracy, 5)}


@dataclass(frozen=True)
class TrainingStatus:
    """A network's training state, with the seed's keys (``accuracy``, ``datetime``: the
    last successful training, as strings) kept first."""

    accuracy: str | None = None
    """Test accuracy in percent of the last successful training, e.g. ``"99.58"``."""
    datetime: str | None = None
    """When that training finished, ``YYYY-MM-DD HH:MM:SS``."""
    state: State = "idle"
    stage: str | None = None
    """What the trainer is doing now ("loading MNIST", "training", ...), or how it ended."""
    progress: Progress | None = None
    error: str | None = None
    """Why the last training failed (``state == "failed"``)."""
    pid: int | None = None
    """The trainer process, while one runs."""
    replica: str | None = None
    """The replica the trainer runs (or last ran) on, where replicas share the state."""
    started: str | None = None
    finished: str | None = None
    history: tuple[Epoch, ...] = ()
    """The current (or last) training's finished epochs."""
    version: str | None = None
    """The version the last successful training made (served or not)."""
    promoted: bool | None = None
    """Whether that version is served: it was at least as accurate as the served weights,
    or the training asked for ``promote=always``."""
    reason: str | None = None
    """Why it was not promoted, with both accuracies."""

    # -- transitions --------------------------------------------------------------------

    def starting(self, pid: int | None, now: str, replica: str | None = None
                 ) -> TrainingStatus:
        """A trainer has been started (the last result stays until a new one replaces it)."""
        return dataclasses.replace(
            self, state="training", stage="starting", progress=None, error=None, pid=pid,
            replica=replica, started=now, finished=None, history=(),
        )

    def staged(self, stage: str) -> TrainingStatus:
        return dataclasses.replace(self, stage=stage)

    def progressed(self, progress: Progress) -> TrainingStatus:
        history = self.history
        if progress.batch == progress.batches:  # an epoch ended
            history = (*history, Epoch(progress.epoch, progress.loss, progress.accuracy))
        return dataclasses.replace(self, stage="training", progress=progress, history=history)

    def finished_with(self, accuracy: str, datetime: str, now: str, *, version: str,
                      promoted: bool, reason: str | None = None) -> TrainingStatus:
        """The training succeeded: its result becomes the last result, served or not."""
        return dataclasses.replace(
            self, state="idle", stage="finished", error=None, accuracy=accuracy,
            datetime=datetime, pid=None, finished=now, version=version, promoted=promoted,
            reason=reason,
        )

    def failed(self, reason: str, now: str) -> TrainingStatus:
        """The training failed; the last successful result (and the served weights) stay.
        The reason is shown to clients, so it names no absolute server paths."""
        return dataclasses.replace(
            self, state="failed", stage="failed", error=hide_paths(reason), pid=None,
            finished=now,
        )

    @property
    def is_training(self) -> bool:
        return self.state == "training"

    # -- the file and the wire -----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["progress"] = None if self.progress is None else self.progress.to_json()
        data["history"] = [epoch.to_json() for epoch in self.history]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainingStatus:
        """The status a file holds; raises ``ValueError`` when it is not one."""
        try:
            state = data.get("state", "idle")
            if state not in STATES:
                raise ValueError(f"unknown state {state!r}")
            progress = data.get("progress")
            pid = data.get("pid")
            promoted = data.get("promoted")
            return cls(
                accuracy=_text(data.get("accuracy")), datetime=_text(data.get("datetime")),
                state=state, stage=_text(data.get("stage")),
                progress=None if progress is None else Progress.from_json(progress),
                error=_text(data.get("error")),
                pid=int(pid) if isinstance(pid, int) and not isinstance(pid, bool) else None,
                replica=_text(data.get("replica")),
                started=_text(data.get("started")), finished=_text(data.get("finished")),
                history=tuple(
                    Epoch(int(e["epoch"]), float(e["loss"]), float(e["accuracy"]))
                    for e in data.get("history") or ()
                ),
                version=_text(data.get("version")),
                promoted=promoted if isinstance(promoted, bool) else None,
                reason=_text(data.get("reason")),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a training status: {exc}") from None


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
