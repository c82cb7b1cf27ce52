"""The store in a local directory (shared by every worker and trainer on one machine):

    <state_dir>/<network>/
        current.json        which version is served, and the one before it (the rollback)
        weights/<v>.params  every kept version, named by content hash, with <v>.json (its
                            record), <v>.onnx (its ONNX export) and, where it is
                            served in int8, <v>.int8.onnx
        pointer.lock        serialises moves of current.json
        status.json         the training status (``TrainingStatus``), temp file + rename
        train.lock          the training lease: an flock held by the running trainer for its
                            whole life; holds its pid

The lease is ``train.lock`` taken non-blocking and handed to the trainer process as an
inherited descriptor. The kernel drops an flock when the last descriptor closes, so a
trainer that crashes or is killed cannot leave the lease stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from nn_server.core.config import KEEP_VERSIONS
from nn_server.core.files import DATETIME_FORMAT, write_atomic
from nn_server.core.records import VersionRecord
from nn_server.store.base import (
    Kept,
    Lease,
    Pointer,
    StateError,
    Store,
    UnknownVersion,
    is_version,
)
from nn_server.store.status import TrainingStatus

EXPORTS = (".onnx", ".int8.onnx")
"""What may lie beside a version's weights: its float ONNX export and int8 model."""
SUFFIXES = (".params", ".json", *EXPORTS)


class FileLease(Lease):
    """``train.lock`` held through one descriptor (inherited by the trainer)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.token = str(fd)
        self.pass_fds = (fd,)

    def name(self, pid: int | None) -> None:
        os.ftruncate(self.fd, 0)
        if pid is not None:
            os.pwrite(self.fd, str(pid).encode(), 0)

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self.fd)


class LocalStore(Store):
    """One network's corner of the state directory."""

    def __init__(self, state_dir: Path, network: str, keep: int = KEEP_VERSIONS) -> None:
        super().__init__(network, keep)
        self.root = Path(state_dir) / network

    @property
    def pointer_path(self) -> Path:
        return self.root / "current.json"

    @property
    def pointer_location(self) -> str:
        return str(self.pointer_path)

    @property
    def status_path(self) -> Path:
        return self.root / "status.json"

    @property
    def lock_path(self) -> Path:
        return self.root / "train.lock"

    @property
    def weights_dir(self) -> Path:
        return self.root / "weights"

    def scratch(self) -> Path:
        # Inside the network's directory, so installing is a rename on the same disk.
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    # -- versions -------------------------------------------------------------------------

    def weights_of(self, version: str) -> Path:
        path = self.weights_dir / f"{version}.params"
        if not is_version(version) or not path.is_file():
            raise UnknownVersion(version)
        return path

    def onnx_of(self, version: str) -> Path:
        return self.weights_of(version).with_suffix(".onnx")

    def _put(self, version: str, weights: Path, record: VersionRecord) -> None:
        target = self.weights_dir / f"{version}.params"
        if not target.exists():
            write_atomic(target, weights.read_bytes())
        for suffix in EXPORTS:
            export = weights.with_suffix(suffix)
            if export.is_file() and not target.with_suffix(suffix).exists():
                write_atomic(target.with_suffix(suffix), export.read_bytes())
        record.write(target)

    def _kept(self) -> list[Kept]:
        kept = []
        for path in self.weights_dir.glob("*.params"):
            record = VersionRecord.read(path)
            if record.added is None:  # a record lost or written by hand
                record = record.kept(added=_stamp(path), source=record.source or "trained",
                                     promoted=record.promoted is not False,
                                     reason=record.reason)
            kept.append(Kept(path.stem, record, _mtime_ns(path.with_suffix(".json"))))
        return kept

    def _remove(self, version: str) -> None:
        for suffix in SUFFIXES:
            (self.weights_dir / f"{version}{suffix}").unlink(missing_ok=True)

    # -- the pointer ----------------------------------------------------------------------

    def pointer(self) -> Pointer | None:
        try:
            return Pointer.parse(self.pointer_path.read_text())
        except OSError:
            return None

    def pointer_signature(self) -> tuple[int, int, int] | None:
        """One ``stat`` of ``current.json``: cheap enough to poll every few seconds."""
        try:
            st = self.pointer_path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _has_pointer(self) -> bool:
        return self.pointer_path.exists()

    def _write_pointer(self, pointer: Pointer | None) -> None:
        if pointer is None:
            self.pointer_path.unlink(missing_ok=True)
            return
        write_atomic(self.pointer_path, pointer.to_text().encode())

    @contextlib.contextmanager
    def _moving_pointer(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "pointer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- status and lease -----------------------------------------------------------------

    def written_status(self) -> TrainingStatus | None:
        try:
            return TrainingStatus.from_json(json.loads(self.status_path.read_text()))
        except (OSError, ValueError):
            return None

    def write_status(self, status: TrainingStatus) -> None:
        write_atomic(self.status_path, json.dumps(status.to_json(), indent=2).encode())

    def _status_stamp(self) -> str:
        return _stamp(self.status_path)

    def try_lease(self) -> FileLease | None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return FileLease(fd)

    def adopt_lease(self, token: str) -> FileLease:
        # Holding the inherited descriptor is what keeps the lock; make sure it really is
        # ours (re-locking a lock this descriptor holds succeeds at once).
        try:
            fd = int(token)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (ValueError, OSError) as exc:
            raise StateError(f"not holding {self.lock_path} through {token!r}: {exc}") from None
        return FileLease(fd)

    def lease_holder(self) -> int | None:
        """The probe takes a *shared* lock for an instant, so probes from many workers never
        collide with each other (an exclusive probe would look like a trainer to a
        concurrent one, and make a train request 409). It opens the file read-only and
        creates nothing: a read-only state directory still answers."""
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

    def _lease_stamp(self) -> str:
        return _stamp(self.lock_path)


def stop_trainers(state_dir: Path) -> None:
    """SIGTERM every trainer still holding a network's lease (each records 'stopped')."""
    for lock in Path(state_dir).glob("*/train.lock"):
        pid = LocalStore(lock.parent.parent, lock.parent.name).lease_holder()
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)


def _stamp(path: Path) -> str:
    try:
        return time.strftime(DATETIME_FORMAT, time.localtime(path.stat().st_mtime))
    except OSError:
        return time.strftime(DATETIME_FORMAT)


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
