"""``python -m nn_server.training.trainer``: the background training process the server starts.

It takes over the training lease from the worker that started it (the local store: an
inherited descriptor holding ``train.lock``, so the lease lives exactly as long as this
process), trains through ``train_network`` and reports progress through a ``TrainingLog``.

When the training succeeds, the promotion rule decides: the new weights and the served
ones are scored on the same test images, each as the workers would compute it (int8
where its record chose int8), and the new ones are served only if they are at least as
accurate (``--promote always`` serves them anyway). Either way they are kept as a
version, so a result that was not served can still be served by hand, and the status says
what happened and why. Any failure is written to the status; the weights being served
are never touched unless a training succeeded and was promoted. Its command line is
``nn_server.training.command.TrainerCommand``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from nn_server.core.records import Precision, VersionRecord
from nn_server.networks import Network, load_registry, network_class
from nn_server.networks.datasets import Split
from nn_server.networks.precision import accuracy, served_model
from nn_server.store import Store, open_store
from nn_server.store.lifecycle import TrainingLog
from nn_server.training.command import TrainerCommand

if TYPE_CHECKING:
    from nn_server.training.run import TrainingJob

WORK_PREFIX = ".training-"
"""Where a run writes before its weights are kept (in the store's scratch directory)."""


class Stopped(Exception):
    """SIGTERM arrived (the server is stopping): give up cleanly and say so."""


def judge(job: TrainingJob, record: VersionRecord, weights: Path, store: Store,
          command: TrainerCommand) -> tuple[VersionRecord, bool, str | None]:
    """The promotion rule: whether the new weights may be served (they are at least as
    accurate as the served ones on the same test images, each computed as the workers
    would compute it: int8 where its record says so), and if not, why; the record with
    the served weights' accuracy added."""
    from nn_server.training.run import load_split

    served = store.pointer()
    if served is None:
        return record, True, None
    cls = network_class(job.network)
    test = load_split(cls, "test", job)
    try:
        old, old_precision = as_served(cls, store.weights_of(served.version), test, command)
    except Exception:  # unreadable served weights lose to any that load
        return record, True, None
    new, new_precision = as_served(cls, weights, test, command)
    record = dataclasses.replace(record, served_accuracy=old)
    if new >= old:
        return record, True, None
    return record, False, (f"{new * 100:.2f} % ({new_precision}) < {old * 100:.2f} % "
                           f"({old_precision}) of the served weights")


def as_served(cls: type[Network], weights: Path, test: Split, command: TrainerCommand
              ) -> tuple[float, Precision]:
    """Accuracy (0..1) of saved weights on ``test`` as the workers compute them, and in
    which precision: the ONNX model they load (the int8 one where the version's record
    chose it), or MXNet's forward pass under ``--runtime mxnet``."""
    from nn_server.training.run import score

    model, computes = served_model(weights, command.runtime, command.precision)
    if command.runtime != "onnx" or not model.is_file():  # the workers would export it
        return score(cls, weights, test), "float"
    return accuracy(model.read_bytes(), test), computes


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Stopped("training was stopped because the server shut down")


def main(argv: list[str] | None = None) -> int:
    command = TrainerCommand.parse(argv, sorted(load_registry()))
    store = open_store(command.location, command.network, keep=command.keep)
    lease = store.adopt_lease(command.lease)
    signal.signal(signal.SIGTERM, on_sigterm)
    # Say "training" before loading MXNet (a second or two), so that the status is right
    # from the start.
    log = TrainingLog(store, os.getpid())
    # Work folders of trainers that were killed (kill -9 skips the clean-up below).
    for stale in store.scratch().glob(f"{WORK_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=store.scratch()))
    try:
        from nn_server.training.run import TrainingJob, train_network

        recipe = network_class(command.network).recipe
        if command.epochs is not None:
            recipe = dataclasses.replace(recipe, epochs=command.epochs)
        job = TrainingJob(
            network=command.network, out_dir=work, data_dir=command.data_dir, recipe=recipe,
            train_subset=command.train_subset, test_subset=command.test_subset,
            allow_download=True,
        )
        record = train_network(job, log.progress, on_stage=log.stage)
        promoted, reason = True, None
        if command.promote == "better":
            log.stage("comparing with the served weights")
            weights = work / f"{command.network}.params"
            record, promoted, reason = judge(job, record, weights, store, command)
            record.write(weights)
        # Once the new weights are being kept, finish: a SIGTERM now would leave a version
        # (or the pointer) changed and the status saying "stopped".
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        version = store.add(work / f"{command.network}.params", source="trained",
                            promoted=promoted, reason=reason)
        if promoted:
            store.serve(version)
        lease.name(None)  # handing back: readers trust the status now
        log.finish(record, version, promoted, reason)
        return 0
    except Stopped as exc:
        lease.name(None)
        log.fail(str(exc))
        return 1
    except Exception as exc:  # every failure must reach the status
        lease.name(None)
        log.fail(f"training failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        # The verdict is written: let the next training start now, not after the slow
        # clean-up and interpreter shutdown below.
        lease.release()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
