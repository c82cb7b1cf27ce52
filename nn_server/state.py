"""The state directory: what every worker, the trainer and the next server start agree on.

    <state_dir>/<network>/
        current.json        which weights are served: {"weights", "version", "accuracy", "datetime"}
        weights/<v>.params  trained weights, named by content version, with <v>.json records
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
from dataclasses import dataclass
from pathlib import Path

from nn_server.records import DATETIME_FORMAT, read_record, weights_version, write_atomic
from nn_server.training.status import TrainingStatus

KEEP_WEIGHTS = 3
"""Older trained weights are pruned beyond this many (the served one is always kept)."""


class StateError(RuntimeError):
    """The state directory is unusable (no weights to seed it with, unwritable, ...)."""


@dataclass(frozen=True)
class Pointer:
    """The weights currently served: a file in ``weights/`` and what is known about it."""

    weights: Path
    version: str
    accuracy: str | None
    datetime: str | None


@dataclass(frozen=True)
class NetworkState:
    """One network's corner of the state directory."""

    root: Path

    @classmethod
    def of(cls, state_dir: Path, network: str) -> NetworkState:
        return cls(Path(state_dir) / network)

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

    # -- weights --------------------------------------------------------------------------

    def seed(self, weights: Path | None) -> bool:
        """Start serving ``weights`` unless this network already serves something; whether
        it serves anything now (False: no weights, so the network answers 503)."""
        if self.pointer() is not None:
            return True
        if weights is None or not Path(weights).is_file():
            return False
        self.install(Path(weights))
        return True

    def install(self, weights: Path) -> Pointer:
        """Copy ``weights`` (and its record) into ``weights/`` and point the servers at it.

        The copy lands under its version name first; only then does ``current.json`` move,
        atomically, so a worker that follows the pointer always finds complete weights.
        """
        version = weights_version(weights)
        record = read_record(weights)
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        target = self.weights_dir / f"{version}.params"
        if not target.exists():
            write_atomic(target, Path(weights).read_bytes())
        write_atomic(target.with_suffix(".json"), json.dumps(record, indent=2).encode())
        pointer = Pointer(target, version, record.get("accuracy"), record.get("datetime"))
        write_atomic(
            self.pointer_path,
            json.dumps({
                "weights": target.name, "version": version,
                "accuracy": pointer.accuracy, "datetime": pointer.datetime,
            }).encode(),
        )
        self._prune(keep=target)
        return pointer

    def pointer(self) -> Pointer | None:
        """The weights to serve now, or None before the directory is seeded."""
        try:
            data = json.loads(self.pointer_path.read_text())
            return Pointer(
                self.weights_dir / str(data["weights"]), str(data["version"]),
                data.get("accuracy"), data.get("datetime"),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def pointer_signature(self) -> tuple[int, int, int] | None:
        """A cheap fingerprint of ``current.json`` (one ``stat``) to notice that it moved."""
        try:
            st = self.pointer_path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _prune(self, keep: Path) -> None:
        trained = sorted(self.weights_dir.glob("*.params"), key=lambda p: p.stat().st_mtime)
        for old in trained[:-KEEP_WEIGHTS]:
            if old != keep:
                old.unlink(missing_ok=True)
                old.with_suffix(".json").unlink(missing_ok=True)

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

