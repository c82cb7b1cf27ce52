"""``python -m nn_server.training.trainer``: the background training process the server starts.

It inherits the locked ``train.lock`` descriptor from the worker that started it (so the
lock lives exactly as long as this process), trains through ``train_network``, reports
progress into the network's status file at most every ``STATUS_INTERVAL_S``, and on success
installs the new weights and moves ``current.json`` to them. Any failure is written to the
status file; the weights being served are never touched unless training succeeded.

    python -m nn_server.training.trainer --network lenet --state-dir DIR --lock-fd N
        [--data-dir DIR] [--epochs N] [--train-subset N] [--test-subset N]
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
from typing import Any

from nn_server.networks import REGISTRY, network_class
from nn_server.records import DATETIME_FORMAT
from nn_server.state import NetworkState
from nn_server.training.status import Progress

STATUS_INTERVAL_S = 0.25
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

    def finish(self, record: dict[str, Any]) -> None:
        # The served version is read from current.json, which install() has just moved.
        self.status = self.status.finished_with(record["accuracy"], record["datetime"], now())
        self.flush()

    def fail(self, reason: str) -> None:
        self.status = self.status.failed(reason, now())
        self.flush()


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Stopped("training was stopped because the server shut down")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Holding the inherited descriptor is what keeps the lock; make sure it really is ours.
    fcntl.flock(args.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    signal.signal(signal.SIGTERM, on_sigterm)
    state = NetworkState.of(args.state_dir, args.network)
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
        # Once the new weights are being installed, finish: a SIGTERM now would leave the
        # pointer on the new weights and the status saying "stopped".
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        state.install(work / f"{args.network}.params")
        state.name_holder(args.lock_fd, None)  # handing back: readers trust the status now
        writer.finish(record)
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
