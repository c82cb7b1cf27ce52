"""The ``Store`` interface: one network's versions, the served pointer, the training status
and the training lease — what every worker, the trainer and the next server start agree on.

A backend implements the primitives (the abstract methods: where bytes live, how the pointer
moves atomically, how a lease is held); the rules are written once, here: seeding, promotion
with a rollback, pruning, recovery at start-up, and how a dead trainer is reported. Today's
backend is the local directory (``nn_server.store.local``); another is one new module.

A lease is what makes exactly one training run at a time. It is taken by the worker that
starts a trainer, handed to the trainer process (``Lease.token``), named with the trainer's
pid so readers can tell a starting trainer from a finished one, and released when the
trainer has written its verdict. "The status says training but nobody holds the lease"
therefore means the trainer died; readers report that without writing anything.
"""

from __future__ import annotations

import abc
import contextlib
import json
import time
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass
from pathlib import Path

from nn_server.core.config import KEEP_VERSIONS
from nn_server.core.errors import Conflict, Missing, Unavailable
from nn_server.core.files import DATETIME_FORMAT, weights_version
from nn_server.core.records import Precision, Source, VersionRecord
from nn_server.store.status import TrainingStatus

VERSION_LENGTH = 12


class TrainingInProgress(Conflict):
    """A training of this network is already running."""


class StateError(RuntimeError):
    """The store is unusable (no weights to seed it with, unwritable, ...)."""


class StoreUnavailable(Unavailable):
    """The shared state (a cluster's Redis) does not answer: serving goes on with the
    weights each worker has; what reads or changes the state waits until it is back."""


class UnknownVersion(Missing):
    """No such version of this network is kept."""


class DamagedVersion(Conflict):
    """A kept version's weights no longer match their content hash (truncated, overwritten)."""


@dataclass(frozen=True)
class Pointer:
    """The version served now, and the one served before it (what a rollback goes back to)."""

    version: str
    accuracy: str | None
    datetime: str | None
    previous: str | None = None

    def to_text(self) -> str:
        # "weights" names the file for readers of a state directory (and older servers).
        return json.dumps({"weights": f"{self.version}.params", "version": self.version,
                           "accuracy": self.accuracy, "datetime": self.datetime,
                           "previous": self.previous})

    @classmethod
    def parse(cls, text: str | bytes) -> Pointer | None:
        """The pointer ``text`` holds; None when it is not one a store wrote."""
        try:
            data = json.loads(text)
            version, previous = data["version"], data.get("previous")
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(version, str) or not is_version(version):
            return None  # not written by a store: as unreadable as broken JSON
        accuracy, datetime = data.get("accuracy"), data.get("datetime")
        return cls(version, accuracy if isinstance(accuracy, str) else None,
                   datetime if isinstance(datetime, str) else None,
                   previous if isinstance(previous, str) else None)


@dataclass(frozen=True)
class Version:
    """One kept version, as ``GET /<net>/versions`` lists it."""

    version: str
    accuracy: str | None
    """Test accuracy in percent, as the training that made it measured it."""
    datetime: str | None
    """When it was trained."""
    epochs: int | None
    duration_s: float | None
    added: str
    """When it joined the store."""
    source: str
    """``shipped`` (came with the package), ``seed`` (NN_SEED_WEIGHTS) or ``trained``."""
    promoted: bool
    """Whether it passed the promotion rule (at least as accurate as what was served)."""
    reason: str | None
    """Why it was not promoted."""
    served: bool
    accuracies: dict[str, str]
    """Test accuracy in percent per precision it was measured in, ``{"float": "99.55",
    "int8": "99.54"}``; a version never measured lists its training's figure as float."""
    precision: Precision
    """What ONNX Runtime serves it in with ``NN_PRECISION=int8`` (the routes say what this
    server's workers run): ``int8`` where it measured within 0.1 points of float."""


@dataclass(frozen=True)
class Kept:
    """A backend's view of one kept version: its record, and an order among versions that
    were added in the same second (the record's write time, or a sequence number)."""

    version: str
    record: VersionRecord
    order: int


class Lease(abc.ABC):
    """The right to train a network, held by one trainer process at a time."""

    token: str
    """What the trainer process is given to take the lease over (``Store.adopt_lease``)."""
    pass_fds: tuple[int, ...] = ()
    """Descriptors the trainer process must inherit for the lease to hold."""

    @abc.abstractmethod
    def name(self, pid: int | None) -> None:
        """Say which process holds the lease (None: the holder is handing it back)."""

    @abc.abstractmethod
    def release(self) -> None:
        """Let the next training start (the holder's verdict is written)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop holding this handle (the trainer holds its own)."""


class Store(abc.ABC):
    """One network's store; subclasses supply the primitives below."""

    replica: str | None = None
    """The replica this store's process runs on, where many share the state (a cluster)."""

    def __init__(self, network: str, keep: int = KEEP_VERSIONS) -> None:
        self.network = network
        self.keep = keep

    # -- primitives: versions -------------------------------------------------------------

    @abc.abstractmethod
    def weights_of(self, version: str) -> Path:
        """A local file holding ``version``'s weights; raises ``UnknownVersion``."""

    @abc.abstractmethod
    def onnx_of(self, version: str) -> Path:
        """Where the ONNX export of ``version`` lives locally (it may not exist yet)."""

    @abc.abstractmethod
    def _put(self, version: str, weights: Path, record: VersionRecord) -> None:
        """Keep the weights (and the ONNX export beside them, if any) under ``version``,
        then its record; kept weights are never rewritten (same version, same bytes)."""

    @abc.abstractmethod
    def _kept(self) -> list[Kept]:
        """Every kept version, in no particular order."""

    @abc.abstractmethod
    def _remove(self, version: str) -> None:
        """Forget ``version`` and everything kept with it."""

    # -- primitives: the pointer ----------------------------------------------------------

    @abc.abstractmethod
    def pointer(self) -> Pointer | None:
        """The version to serve now, or None before the store is seeded (or unreadable)."""

    @abc.abstractmethod
    def pointer_signature(self) -> Hashable | None:
        """A cheap fingerprint of the pointer, to notice that it moved."""

    @property
    @abc.abstractmethod
    def pointer_location(self) -> str:
        """Where the pointer is kept, for messages (a path, a key)."""

    @abc.abstractmethod
    def _has_pointer(self) -> bool:
        """Whether a pointer was ever written (readable or not)."""

    @abc.abstractmethod
    def _write_pointer(self, pointer: Pointer | None) -> None:
        """Move the pointer atomically (None: remove it); only inside ``_moving_pointer``."""

    @abc.abstractmethod
    def _moving_pointer(self) -> contextlib.AbstractContextManager[None]:
        """Serialises moves of the pointer (a trainer installing, a user serving another
        version), so that neither loses the other's rollback."""

    # -- primitives: status and lease -----------------------------------------------------

    @abc.abstractmethod
    def written_status(self) -> TrainingStatus | None:
        """The status as last written, or None when none is (or it is unreadable)."""

    @abc.abstractmethod
    def write_status(self, status: TrainingStatus) -> None:
        """For ``nn_server.store.lifecycle.TrainingLog``, the status's only writer."""

    @abc.abstractmethod
    def _status_stamp(self) -> str:
        """When the status was last written."""

    @abc.abstractmethod
    def try_lease(self) -> Lease | None:
        """The training lease, or None while a trainer holds it."""

    @abc.abstractmethod
    def adopt_lease(self, token: str) -> Lease:
        """In the trainer process: the lease its starter took; raises ``StateError`` when
        it is not held through ``token``."""

    @abc.abstractmethod
    def lease_holder(self) -> int | None:
        """The pid of the trainer holding the lease (0 while it is handed over or back),
        or None when no trainer runs."""

    @abc.abstractmethod
    def _lease_stamp(self) -> str:
        """When the lease was last taken."""

    @abc.abstractmethod
    def scratch(self) -> Path:
        """A local directory where a trainer writes before its weights are kept."""

    # -- hooks with a default -------------------------------------------------------------

    def _holder_replica(self) -> str | None:
        """The replica the lease holder runs on (None: this machine's store)."""
        return None

    def _died(self, written: TrainingStatus) -> str:
        """Why a training that holds no lease any more failed."""
        return trainer_died(written.pid)

    async def swaps(self) -> AsyncIterator[str]:
        """The networks whose pointer moved, as they move, where the backend can tell (a
        cluster's pub/sub); without that, nothing, and workers poll the pointer."""
        return
        yield  # an async generator that ends at once

    # -- the rules: versions --------------------------------------------------------------

    def intact(self, version: str) -> bool:
        """Whether ``version``'s weights are there and still hash to their name."""
        try:
            return weights_version(self.weights_of(version)) == version
        except (UnknownVersion, OSError):
            return False

    def add(self, weights: Path, *, source: Source, promoted: bool = True,
            reason: str | None = None) -> str:
        """Keep ``weights`` (with the record and ONNX export beside them) as a version,
        without serving it; its version."""
        version = weights_version(weights)
        record = VersionRecord.read(weights).kept(
            added=time.strftime(DATETIME_FORMAT), source=source, promoted=promoted,
            reason=reason)
        self._put(version, Path(weights), record)
        return version

    def serve(self, version: str) -> Pointer:
        """Point every worker at ``version`` (they follow within ``NN_RELOAD_S``); the version
        served until now becomes the rollback. Raises ``UnknownVersion``, ``DamagedVersion``.

        The weights are complete before the pointer moves, so a worker that follows the
        pointer always finds what it points to.
        """
        record = VersionRecord.read(self.weights_of(version))
        if not self.intact(version):
            raise DamagedVersion(f"version {version} is damaged: its weights do not match it")
        with self._moving_pointer():
            current = self.pointer()
            previous = None
            if current is not None:
                previous = current.version if current.version != version else current.previous
            pointer = Pointer(version, record.accuracy, record.datetime, previous)
            self._write_pointer(pointer)
            self._prune(pointer)
        return pointer

    def install(self, weights: Path, source: Source = "trained") -> Pointer:
        """Keep ``weights`` as a version and serve it."""
        return self.serve(self.add(weights, source=source))

    def seed(self, weights: Path | None, source: Source = "shipped") -> bool:
        """Start serving ``weights`` unless this network already serves something; whether
        it serves anything now (False: no weights, so the network answers 503)."""
        if self.pointer() is not None:
            return True
        if weights is None or not Path(weights).is_file():
            return False
        self.install(Path(weights), source)
        return True

    def recover(self, fallback: Path | None) -> str | None:
        """At start-up, before any worker reads it: make sure the pointer names intact
        weights. If it is unreadable, or its weights are missing or damaged, serve the
        previous version, else ``fallback`` (the shipped weights). What was wrong and what
        is served now, for the log; None when all was well (or nothing is seeded yet)."""
        if not self._has_pointer():
            return None
        pointer = self.pointer()
        if pointer is not None and self.intact(pointer.version):
            return None
        if pointer is None:
            problem = f"{self.pointer_location} is unreadable"
        else:
            problem = f"the served weights {pointer.version} are missing or damaged"
        if pointer is not None and pointer.previous and self.intact(pointer.previous):
            self.serve(pointer.previous)
            return f"{problem}; serving the version before it, {pointer.previous}"
        if fallback is not None and fallback.is_file():
            version = self.install(fallback, "shipped").version
            return f"{problem}; serving the shipped weights {version}"
        with self._moving_pointer():
            self._write_pointer(None)
        return f"{problem}, and there is nothing else to serve"

    def versions(self) -> list[Version]:
        """Every kept version, newest first."""
        pointer = self.pointer()
        served = pointer.version if pointer else None
        listed = []
        for kept in self._kept():
            r = kept.record
            listed.append((Version(
                version=kept.version, accuracy=r.accuracy, datetime=r.datetime,
                epochs=r.epochs, duration_s=None if r.duration_s is None else float(r.duration_s),
                added=r.added or "", source=r.source or "trained",
                promoted=r.promoted is not False, reason=r.reason,
                served=kept.version == served,
                accuracies=r.accuracies or ({"float": r.accuracy} if r.accuracy else {}),
                precision=r.precision or "float",
            ), kept.order))
        # Newest first: by when each was added, then by the backend's order (same second).
        return [v for v, _ in sorted(listed, key=lambda x: (x[0].added, x[1]), reverse=True)]

    def _prune(self, pointer: Pointer) -> None:
        """Keep the newest ``keep`` versions, and always the served one and the previous."""
        protected = {pointer.version, pointer.previous}
        for index, version in enumerate(self.versions()):
            if index >= self.keep and version.version not in protected:
                self._remove(version.version)

    # -- the rules: status ----------------------------------------------------------------

    def status(self) -> TrainingStatus:
        """The status to report, derived without writing anything: as written (or, before
        any training, one describing the served weights), except that a trainer that died
        without a verdict is reported as failed, and one that has been started but has not
        written yet as starting (also where what is written is a trainer that died)."""
        written = self.written_or_idle()
        holder = self.lease_holder()
        if written.is_training and holder is None:
            # Nobody holds the lease: the trainer died without a word, or has just finished
            # (its verdict lands before it lets go of the lease, so look once more).
            written = self.written_or_idle()
            if written.is_training:
                return written.failed(self._died(written), self._status_stamp())
        if not written.is_training and holder:
            return written.starting(holder, self._lease_stamp(), self._holder_replica())
        replica = self._holder_replica()
        if written.is_training and holder is not None \
                and (holder, replica) != (written.pid, written.replica):
            # What is written is a trainer that died; the lease is a new one's, which has
            # not written yet (in a cluster, on another replica).
            return written.starting(holder or None, self._lease_stamp(), replica)
        return written

    def written_or_idle(self) -> TrainingStatus:
        """The status as written; before any training, one describing the served weights."""
        written = self.written_status()
        if written is not None:
            return written
        pointer = self.pointer()
        return TrainingStatus(accuracy=pointer.accuracy if pointer else None,
                              datetime=pointer.datetime if pointer else None)

    def is_training(self) -> bool:
        return self.status().is_training

    def trainer_running(self) -> bool:
        """Whether a trainer holds the lease."""
        return self.lease_holder() is not None


def is_version(text: str) -> bool:
    """Whether ``text`` looks like a version: 12 lowercase hex digits (a content hash)."""
    return len(text) == VERSION_LENGTH and all(c in "0123456789abcdef" for c in text)


def trainer_died(pid: object) -> str:
    """The failure reason for a trainer that vanished while holding no result."""
    who = f"the trainer process (pid {pid})" if pid else "the trainer process"
    return f"{who} exited without finishing: it was killed or crashed"
