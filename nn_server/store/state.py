"""The state directory: what every worker, the trainer and the next server start agree on.

    <state_dir>/<network>/
        current.json        which version is served, and the one before it (the rollback)
        weights/<v>.params  every kept version, named by content hash, with <v>.json (its
                            record: accuracy, recipe, where it came from, whether it was
                            promoted) and <v>.onnx (its ONNX export)
        pointer.lock        serialises moves of current.json
        status.json         the training status (``TrainingStatus``), temp file + rename
        train.lock          flock held by the running trainer for its whole life; holds its pid

Exactly one training runs at a time because starting one means taking ``train.lock``
(non-blocking) and handing the locked descriptor to the trainer process. The kernel drops
an flock when the last descriptor closes, so a trainer that crashes or is killed cannot
leave the lock stuck; "status says training but the lock is free" therefore means the
trainer died. Readers report that as a failure without writing anything; the supervisor's
reaper, or the next training, records it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nn_server.core.config import KEEP_VERSIONS
from nn_server.core.errors import Conflict, Missing
from nn_server.core.files import DATETIME_FORMAT, read_record, weights_version, write_atomic
from nn_server.store.status import TrainingStatus

# Versions kept per network by default (``NN_KEEP_VERSIONS``): older ones are pruned, but
# never the served one nor the one served before it (the rollback).
VERSION_LENGTH = 12


class TrainingInProgress(Conflict):
    """A training of this network is already running."""


class StateError(RuntimeError):
    """The state directory is unusable (no weights to seed it with, unwritable, ...)."""


class UnknownVersion(Missing):
    """No such version of this network is kept."""


class DamagedVersion(Conflict):
    """A kept version's weights no longer match their content hash (truncated, overwritten)."""


@dataclass(frozen=True)
class Pointer:
    """The weights currently served: a file in ``weights/`` and what is known about it."""

    weights: Path
    version: str
    accuracy: str | None
    datetime: str | None
    previous: str | None = None
    """The version served before this one: what a rollback goes back to."""


@dataclass(frozen=True)
class Version:
    """One set of weights kept in ``weights/``, as ``GET /<net>/versions`` lists it."""

    version: str
    accuracy: str | None
    """Test accuracy in percent, as the training that made it measured it."""
    datetime: str | None
    """When it was trained."""
    epochs: int | None
    duration_s: float | None
    added: str
    """When it joined this state directory."""
    source: str
    """``shipped`` (came with the package), ``seed`` (NN_SEED_WEIGHTS) or ``trained``."""
    promoted: bool
    """Whether it passed the promotion rule (at least as accurate as what was served)."""
    reason: str | None
    """Why it was not promoted."""
    served: bool


@dataclass(frozen=True)
class NetworkState:
    """One network's corner of the state directory."""

    root: Path
    keep: int = KEEP_VERSIONS

    @classmethod
    def of(cls, state_dir: Path, network: str, keep: int = KEEP_VERSIONS) -> NetworkState:
        return cls(Path(state_dir) / network, keep)

    @property
    def pointer_path(self) -> Path:
        return self.root / "current.json"

    @property
    def status_path(self) -> Path:
        return self.root / "status.json"

    @property
    def lock_path(self) -> Path:
        return self.root / "train.lock"

    @property
    def weights_dir(self) -> Path:
        return self.root / "weights"

    def weights_of(self, version: str) -> Path:
        """The weights file of a kept ``version``; raises ``UnknownVersion``."""
        path = self.weights_dir / f"{version}.params"
        if not is_version(version) or not path.is_file():
            raise UnknownVersion(version)
        return path

    def intact(self, version: str) -> bool:
        """Whether ``version``'s weights are there and still hash to their name."""
        try:
            return weights_version(self.weights_of(version)) == version
        except (UnknownVersion, OSError):
            return False

    def onnx_of(self, version: str) -> Path:
        """Where the ONNX export of ``version`` lives (it may not exist yet)."""
        return self.weights_of(version).with_suffix(".onnx")

    # -- versions -------------------------------------------------------------------------

    def seed(self, weights: Path | None, source: str = "shipped") -> bool:
        """Start serving ``weights`` unless this network already serves something; whether
        it serves anything now (False: no weights, so the network answers 503)."""
        if self.pointer() is not None:
            return True
        if weights is None or not Path(weights).is_file():
            return False
        self.serve(self.add(Path(weights), source=source))
        return True

    def add(self, weights: Path, *, source: str, promoted: bool = True,
            reason: str | None = None) -> str:
        """Keep ``weights`` (with its record and ONNX export, when they are beside it) as a
        version in ``weights/``, without serving it; its version."""
        version = weights_version(weights)
        record = {
            **read_record(weights), "added": time.strftime(DATETIME_FORMAT),
            "source": source, "promoted": promoted, "reason": reason,
        }
        target = self.weights_dir / f"{version}.params"
        if not target.exists():
            write_atomic(target, Path(weights).read_bytes())
        onnx = Path(weights).with_suffix(".onnx")
        if onnx.is_file() and not target.with_suffix(".onnx").exists():
            write_atomic(target.with_suffix(".onnx"), onnx.read_bytes())
        write_atomic(target.with_suffix(".json"), json.dumps(record, indent=2).encode())
        return version

    def serve(self, version: str) -> Pointer:
        """Point every worker at ``version`` (they follow within ``NN_RELOAD_S``); the
        version served until now becomes the rollback. Raises ``UnknownVersion``.

        The weights are complete on disk before ``current.json`` moves, atomically, so a
        worker that follows the pointer always finds what it points to.
        """
        target = self.weights_of(version)
        if not self.intact(version):
            raise DamagedVersion(f"version {version} is damaged: its weights do not match it")
        record = read_record(target)
        with self._pointer_lock():
            current = self.pointer()
            previous = None
            if current is not None:
                previous = current.version if current.version != version else current.previous
            pointer = Pointer(target, version, record.get("accuracy"), record.get("datetime"),
                              previous)
            write_atomic(self.pointer_path, json.dumps({
                "weights": target.name, "version": version, "accuracy": pointer.accuracy,
                "datetime": pointer.datetime, "previous": previous,
            }).encode())
            self._prune(pointer)
        return pointer

    def recover(self, fallback: Path | None) -> str | None:
        """At start-up, before any worker reads it: make sure ``current.json`` names intact
        weights. If it is unreadable, or its weights are missing or damaged, serve the
        previous version, else ``fallback`` (the shipped weights). What was wrong and what
        is served now, for the log; None when all was well (or nothing is seeded yet)."""
        if not self.pointer_path.exists():
            return None
        pointer = self.pointer()
        if pointer is not None and self.intact(pointer.version):
            return None
        if pointer is None:
            problem = f"{self.pointer_path} is unreadable"
        else:
            problem = f"the served weights {pointer.version} are missing or damaged"
        if pointer is not None and pointer.previous and self.intact(pointer.previous):
            self.serve(pointer.previous)
            return f"{problem}; serving the version before it, {pointer.previous}"
        if fallback is not None and fallback.is_file():
            version = self.add(fallback, source="shipped")
            self.serve(version)
            return f"{problem}; serving the shipped weights {version}"
        self.pointer_path.unlink(missing_ok=True)
        return f"{problem}, and there is nothing else to serve"

    def install(self, weights: Path, source: str = "trained") -> Pointer:
        """Keep ``weights`` as a version and serve it."""
        return self.serve(self.add(weights, source=source))

    def versions(self) -> list[Version]:
        """Every kept version, newest first."""
        pointer = self.pointer()
        served = pointer.version if pointer else None
        found = []
        for path in self.weights_dir.glob("*.params"):
            record = read_record(path)
            order = _mtime_ns(path.with_suffix(".json"))
            epochs, duration = record.get("epochs"), record.get("duration_s")
            found.append((Version(
                version=path.stem, accuracy=_text(record.get("accuracy")),
                datetime=_text(record.get("datetime")),
                epochs=epochs if isinstance(epochs, int) else None,
                duration_s=float(duration) if isinstance(duration, int | float) else None,
                added=_text(record.get("added")) or self._stamp(path),
                source=_text(record.get("source")) or "trained",
                promoted=record.get("promoted") is not False,
                reason=_text(record.get("reason")), served=path.stem == served,
            ), order))
        # Newest first: by when each was added, then by its record's write (same second).
        return [v for v, _ in sorted(found, key=lambda f: (f[0].added, f[1]), reverse=True)]

    def pointer(self) -> Pointer | None:
        """The weights to serve now, or None before the directory is seeded."""
        try:
            data = json.loads(self.pointer_path.read_text())
            previous = data.get("previous")
            return Pointer(
                self.weights_dir / str(data["weights"]), str(data["version"]),
                data.get("accuracy"), data.get("datetime"),
                previous if isinstance(previous, str) else None,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def pointer_signature(self) -> tuple[int, int, int] | None:
        """A cheap fingerprint of ``current.json`` (one ``stat``) to notice that it moved."""
        try:
            st = self.pointer_path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    @contextlib.contextmanager
    def _pointer_lock(self) -> Iterator[None]:
        """Serialises moves of the pointer (a trainer installing, a user serving another
        version), so that neither loses the other's rollback."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "pointer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _prune(self, pointer: Pointer) -> None:
        """Keep the newest ``keep`` versions, and always the served one and the previous."""
        protected = {pointer.version, pointer.previous}
        kept = 0
        for version in self.versions():
            kept += 1
            if kept <= self.keep or version.version in protected:
                continue
            for suffix in (".params", ".json", ".onnx"):
                (self.weights_dir / f"{version.version}{suffix}").unlink(missing_ok=True)

    # -- training status ------------------------------------------------------------------

    def read_status(self) -> TrainingStatus:
        """The status file as written, or an idle status describing the served weights."""
        try:
            return TrainingStatus.from_json(json.loads(self.status_path.read_text()))
        except (OSError, ValueError):
            pointer = self.pointer()
            return TrainingStatus(
                accuracy=pointer.accuracy if pointer else None,
                datetime=pointer.datetime if pointer else None,
            )

    def write_status(self, status: TrainingStatus) -> None:
        """For the trainer and the supervisor's reaper, the status's only writers."""
        write_atomic(self.status_path, json.dumps(status.to_json(), indent=2).encode())

    def status(self) -> TrainingStatus:
        """The status to report, derived without writing anything: as written, except that
        a trainer that died without a verdict is reported as failed, and one that has been
        started but has not written yet as starting."""
        written = self.read_status()
        holder = self.lock_holder()
        if written.is_training and holder is None:
            # No trainer holds the lock: it died without a word, or has just finished
            # (its verdict lands before it lets go of the lock, so look once more).
            written = self.read_status()
            if written.is_training:
                return written.failed(trainer_died(written.pid), self._stamp(self.status_path))
        if not written.is_training and holder:
            return written.starting(holder, self._stamp(self.lock_path))
        return written

    def is_training(self) -> bool:
        return self.status().is_training

    @staticmethod
    def _stamp(path: Path) -> str:
        try:
            return time.strftime(DATETIME_FORMAT, time.localtime(path.stat().st_mtime))
        except OSError:
            return time.strftime(DATETIME_FORMAT)

    # -- the training lock ----------------------------------------------------------------

    def try_lock(self) -> int | None:
        """A descriptor holding ``train.lock`` exclusively, or None while a trainer runs."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @staticmethod
    def name_holder(fd: int, pid: int | None) -> None:
        """Write the trainer's pid into the held lock (or clear it as the trainer finishes),
        so that readers can tell a starting trainer from one that is handing over."""
        os.ftruncate(fd, 0)
        if pid is not None:
            os.pwrite(fd, str(pid).encode(), 0)

    def lock_holder(self) -> int | None:
        """The pid of the trainer holding ``train.lock`` (0 while it is being handed over or
        handing back), or None when no trainer runs.

        The probe takes a *shared* lock for an instant, so probes from many workers never
        collide with each other (an exclusive probe would look like a trainer to a
        concurrent one, and make a train request 409). It opens the file read-only and
        creates nothing: a read-only state directory still answers.
        """
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else 0
        finally:
            os.close(fd)
        return None

    def trainer_running(self) -> bool:
        """Whether a trainer holds ``train.lock``."""
        return self.lock_holder() is not None


def stop_trainers(state_dir: Path) -> None:
    """SIGTERM every trainer still holding a network's lock (each records 'stopped')."""
    for lock in Path(state_dir).glob("*/train.lock"):
        pid = NetworkState(lock.parent).lock_holder()
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)


def is_version(text: str) -> bool:
    """Whether ``text`` looks like a version: 12 lowercase hex digits (a content hash)."""
    return len(text) == VERSION_LENGTH and all(c in "0123456789abcdef" for c in text)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def trainer_died(pid: object) -> str:
    """The failure reason for a trainer that vanished while holding no result."""
    who = f"the trainer process (pid {pid})" if pid else "the trainer process"
    return f"{who} exited without finishing: it was killed or crashed"


def describe_exit(returncode: int) -> str:
    """A trainer's exit status in words, for the failure reason."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"the trainer process was killed by {signal.Signals(-returncode).name}"
        return f"the trainer process was killed by signal {-returncode}"
    return f"the trainer process exited with status {returncode}"

