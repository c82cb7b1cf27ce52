"""``python -m nn_server.training.trainer``: the background training process the server starts.

It inherits the locked ``train.lock`` descriptor from the worker that started it (so the
lock lives exactly as long as this process), trains through ``train_network`` and reports
progress into the network's status file at most every ``STATUS_INTERVAL_S``.

When the training succeeds, the promotion rule decides: the new weights and the served
ones are scored on the same test images, and the new ones are served only if they are at
least as accurate (``--promote always`` serves them anyway). Either way they are kept as a
version, so a result that was not served can still be served by hand, and the status says
what happened and why. Any failure is written to the status file; the weights being served
are never touched unless a training succeeded and was promoted.

    python -m nn_server.training.trainer --network lenet --state-dir DIR --lock-fd N
        [--data-dir DIR] [--epochs N] [--train-subset N] [--test-subset N]
        [--promote better|always] [--keep N]
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from nn_server.core.config import KEEP_VERSIONS
from nn_server.core.files import DATETIME_FORMAT
from nn_server.networks import REGISTRY, network_class
from nn_server.store.state import NetworkState
from nn_server.store.status import Progress

if TYPE_CHECKING:
    from nn_server.training.run import TrainingJob

STATUS_INTERVAL_S = 0.25
PROMOTE = ("better", "always")
WORK_PREFIX = ".training-"
"""Where a run writes before its weights are installed (inside the network's state dir)."""


class Stopped(Exception):
    """SIGTERM arrived (the server is stopping): give up cleanly and say so."""


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m nn_server.training.trainer",
                                     description=__doc__)
    parser.add_argument("--network", required=True, choices=sorted(REGISTRY))
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--lock-fd", type=int, required=True,
                        help="an inherited descriptor that holds train.lock")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--test-subset", type=int, default=None)
    parser.add_argument("--promote", choices=PROMOTE, default="better",
                        help="serve the result only if at least as accurate (better), or always")
    parser.add_argument("--keep", type=int, default=KEEP_VERSIONS,
                        help="versions to keep (the served one and its rollback always stay)")
    return parser.parse_args(argv)


def now() -> str:
    return time.strftime(DATETIME_FORMAT)


class StatusWriter:
    """Keeps the status file current without rewriting it hundreds of times a second."""

    def __init__(self, state: NetworkState) -> None:
        self.state = state
        self.status = state.read_status().starting(os.getpid(), now())
        self.written_at = 0.0
        self.flush()

    def flush(self) -> None:
        self.state.write_status(self.status)
        self.written_at = time.monotonic()

    def stage(self, message: str) -> None:
        self.status = self.status.staged(message)
        self.flush()

    def progress(self, p: Progress) -> None:
        self.status = self.status.progressed(p)
        if p.batch == p.batches or time.monotonic() - self.written_at >= STATUS_INTERVAL_S:
            self.flush()

    def finish(self, record: dict[str, Any], version: str, promoted: bool,
               reason: str | None) -> None:
        self.status = self.status.finished_with(
            record["accuracy"], record["datetime"], now(), version=version, promoted=promoted,
            reason=reason,
        )
        self.flush()

    def fail(self, reason: str) -> None:
        self.status = self.status.failed(reason, now())
        self.flush()


def judge(job: TrainingJob, record: dict[str, Any], state: NetworkState) -> tuple[bool, str | None]:
    """The promotion rule: whether the new weights may be served (they are at least as
    accurate as the served ones on the same test images), and if not, why."""
    from nn_server.training.run import load_split, score

    served = state.pointer()
    if served is None:
        return True, None
    cls = network_class(job.network)
    try:
        served_accuracy = score(cls, served.weights, load_split(cls, "test", job))
    except Exception:  # unreadable served weights lose to any that load
        return True, None
    new = float(record["test_accuracy"])
    record["served_accuracy"] = served_accuracy
    if new >= served_accuracy:
        return True, None
    return False, f"{new * 100:.2f} % < {served_accuracy * 100:.2f} % of the served weights"


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Stopped("training was stopped because the server shut down")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Holding the inherited descriptor is what keeps the lock; make sure it really is ours.
    fcntl.flock(args.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    signal.signal(signal.SIGTERM, on_sigterm)
    state = NetworkState.of(args.state_dir, args.network, keep=args.keep)
    # Say "training" before loading MXNet (a second or two), so that the status is right
    # from the start.
    writer = StatusWriter(state)
    # Work folders of trainers that were killed (kill -9 skips the clean-up below).
    for stale in state.root.glob(f"{WORK_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=state.root))
    try:
        from nn_server.training.run import TrainingJob, train_network

        recipe = network_class(args.network).recipe
        if args.epochs is not None:
            recipe = dataclasses.replace(recipe, epochs=args.epochs)
        job = TrainingJob(
            network=args.network, out_dir=work, data_dir=args.data_dir, recipe=recipe,
            train_subset=args.train_subset, test_subset=args.test_subset, allow_download=True,
        )
        record = train_network(job, writer.progress, on_stage=writer.stage)
        promoted, reason = True, None
        if args.promote == "better":
            writer.stage("comparing with the served weights")
            promoted, reason = judge(job, record, state)
        # Once the new weights are being kept, finish: a SIGTERM now would leave a version
        # (or the pointer) changed and the status saying "stopped".
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        version = state.add(work / f"{args.network}.params", source="trained",
                            promoted=promoted, reason=reason)
        if promoted:
            state.serve(version)
        state.name_holder(args.lock_fd, None)  # handing back: readers trust the status now
        writer.finish(record, version, promoted, reason)
        return 0
    except Stopped as exc:
        state.name_holder(args.lock_fd, None)
        writer.fail(str(exc))
        return 1
    except Exception as exc:  # every failure must reach the status file
        state.name_holder(args.lock_fd, None)
        writer.fail(f"training failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        # The verdict is written: let the next training start now, not after the slow
        # clean-up and interpreter shutdown below.
        fcntl.flock(args.lock_fd, fcntl.LOCK_UN)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
