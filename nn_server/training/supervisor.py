"""Starting the trainer process from a worker, and recording how it ended.

Sanic workers are daemonic processes started with *spawn*, which may not have
``multiprocessing`` children, so training runs as ``python -m nn_server.training.trainer``
in its own session (a Ctrl-C meant for the server does not reach it half-way through a
write). The worker takes the training lease first, hands it to the trainer and names the
trainer's pid in it; a second request, in any worker, finds the lease taken and gets 409.
The trainer writes its own status; the reaper writes one only for a trainer that died
without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, field

from nn_server.core.config import Config
from nn_server.networks import EXTRA_ENV
from nn_server.store import Store, open_store
from nn_server.store.base import Lease, TrainingInProgress
from nn_server.store.lifecycle import record_failure
from nn_server.training.command import Promote, TrainerCommand

log = logging.getLogger("nn_server")
TRAINING_ENGINE = "ThreadedEnginePerDevice"  # MXNet's default
LEASE_RETRIES = 20
LEASE_RETRY_S = 0.05


@dataclass(frozen=True)
class TrainingRequest:
    """What a train request may choose: the epochs (None: the recipe's, or NN_TRAIN_EPOCHS)
    and whether the result is served only if at least as accurate (``better``) or anyway."""

    epochs: int | None = None
    promote: Promote = "better"


@dataclass
class Supervisor:
    """Starts trainers for this worker and keeps a reference to each until it exits."""

    config: Config
    waiters: set[asyncio.Task[None]] = field(default_factory=set)

    def command(self, network: str, lease: Lease, request: TrainingRequest) -> TrainerCommand:
        cfg = self.config
        return TrainerCommand(
            network=network, state_dir=cfg.state_dir, lease=lease.token,
            data_dir=cfg.data_dir,
            epochs=request.epochs if request.epochs is not None else cfg.train_epochs,
            train_subset=cfg.train_subset, test_subset=cfg.test_subset,
            promote=request.promote, keep=cfg.keep_versions, state_url=cfg.state_url,
            weights_url=cfg.weights_url, replica=cfg.replica, runtime=cfg.runtime,
            precision=cfg.precision,
        )

    async def start(self, network: str, title: str,
                    request: TrainingRequest | None = None) -> int:
        """Start training ``network``; its pid. Raises ``TrainingInProgress`` (409)."""
        request = request or TrainingRequest()
        store = open_store(self.config.location, network, self.config.keep_versions)
        lease = await self.take_lease(store)
        if lease is None:
            raise TrainingInProgress(
                f"{title} is already training; follow it at /{network}/train/status"
            )
        try:
            # The trainer should use the machine (the workers were limited to one thread) and
            # MXNet's threaded engine, which overlaps work in a training step.
            env = {
                **os.environ, "OMP_NUM_THREADS": str(self.config.train_threads),
                "MXNET_ENGINE_TYPE": TRAINING_ENGINE,
                # The trainer knows the networks this server serves, however it was told.
                EXTRA_ENV: ",".join(self.config.extra_networks),
            }
            process = await asyncio.create_subprocess_exec(
                *self.command(network, lease, request).argv(), pass_fds=lease.pass_fds,
                start_new_session=True, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, env=env,
            )
            # Known at once, so that a status read or a server stopping in the next second
            # finds the trainer before it has written anything itself.
            lease.name(process.pid)
        except Exception as exc:
            record_failure(store, f"could not start the trainer: {exc}")
            raise
        finally:
            # The trainer holds its own handle on the lease.
            lease.close()
        log.info("training %s in process %d", network, process.pid)
        waiter = asyncio.create_task(self.reap(store, process))
        self.waiters.add(waiter)
        waiter.add_done_callback(self.waiters.discard)
        return process.pid

    async def take_lease(self, store: Store) -> Lease | None:
        """The training lease, or None while a training runs. A trainer that has already
        written its verdict is only exiting, so it is worth a moment's wait."""
        for _ in range(LEASE_RETRIES):
            lease = store.try_lease()
            if lease is not None or store.written_or_idle().is_training:
                return lease
            await asyncio.sleep(LEASE_RETRY_S)
        return store.try_lease()

    async def close(self) -> None:
        """Stop waiting for trainers (the server's main process stops them on exit)."""
        for waiter in list(self.waiters):
            waiter.cancel()
        await asyncio.gather(*self.waiters, return_exceptions=True)

    async def reap(self, store: Store, process: asyncio.subprocess.Process) -> None:
        """Wait for the trainer; if it died without writing its own verdict, write one."""
        returncode = await process.wait()
        if returncode == 0:
            return
        if not store.trainer_running() and store.written_or_idle().is_training:
            record_failure(store, describe_exit(returncode))
        log.warning("trainer process %d: %s", process.pid, describe_exit(returncode))


def describe_exit(returncode: int) -> str:
    """A trainer's exit status in words, for the failure reason."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"the trainer process was killed by {signal.Signals(-returncode).name}"
        return f"the trainer process was killed by signal {-returncode}"
    return f"the trainer process exited with status {returncode}"
