"""The training status's one writer. The trainer reports its run through a ``TrainingLog``
(started, stage, progress, finished or failed); the supervisor records, through
``record_failure``, the end of a trainer that could not write its own. Readers never write:
``Store.status`` derives what to report (a dead trainer reads as failed) from what is here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nn_server.core.files import DATETIME_FORMAT
from nn_server.core.records import VersionRecord
from nn_server.store.base import Store
from nn_server.store.status import Progress

STATUS_INTERVAL_S = 0.25
"""Progress is written at most this often (and at every epoch's end): readers poll."""


def now() -> str:
    return time.strftime(DATETIME_FORMAT)


class TrainingLog:
    """Keeps one training's status current without rewriting it hundreds of times a second."""

    def __init__(self, store: Store, pid: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.store = store
        self.clock = clock
        self.status = store.written_or_idle().starting(pid, now(), store.replica)
        self.written_at = 0.0
        self.flush()

    def flush(self) -> None:
        self.store.write_status(self.status)
        self.written_at = self.clock()

    def stage(self, message: str) -> None:
        self.status = self.status.staged(message)
        self.flush()

    def progress(self, p: Progress) -> None:
        self.status = self.status.progressed(p)
        if p.batch == p.batches or self.clock() - self.written_at >= STATUS_INTERVAL_S:
            self.flush()

    def finish(self, record: VersionRecord, version: str, promoted: bool,
               reason: str | None) -> None:
        self.status = self.status.finished_with(
            record.accuracy or "", record.datetime or now(), now(), version=version,
            promoted=promoted, reason=reason,
        )
        self.flush()

    def fail(self, reason: str) -> None:
        self.status = self.status.failed(reason, now())
        self.flush()


def record_failure(store: Store, reason: str) -> None:
    """The verdict for a trainer that could not write its own (it never started, or died)."""
    store.write_status(store.written_or_idle().failed(reason, now()))
