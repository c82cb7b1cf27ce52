"""Starting the trainer process from a worker, and recording how it ended.

Sanic workers are daemonic processes started with *spawn*, which may not have
``multiprocessing`` children, so training runs as ``python -m nn_server.training.trainer``
in its own session (a Ctrl-C meant for the server does not reach it half-way through a
write). The worker takes ``train.lock`` first, passes the locked descriptor to the trainer
and writes the trainer's pid into the lock; a second request, in any worker, finds the lock
taken and gets 409. The trainer writes its own status; the reaper writes one only for a
trainer that died without a word.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Literal

from nn_server.core.config import Config
from nn_server.core.files import DATETIME_FORMAT
from nn_server.store.state import NetworkState, TrainingInProgress, describe_exit

log = logging.getLogger("nn_server")
TRAINING_ENGINE = "ThreadedEnginePerDevice"  # MXNet's default
LOCK_RETRIES = 20
LOCK_RETRY_S = 0.05


@dataclass(frozen=True)
class TrainingRequest:
    """What a train request may choose: the epochs (None: the recipe's, or NN_TRAIN_EPOCHS)
    and whether the result is served only if at least as accurate (``better``) or anyway."""

    epochs: int | None = None
    promote: Literal["better", "always"] = "better"


@dataclass
class Supervisor:
    """Starts trainers for this worker and keeps a reference to each until it exits."""

    config: Config
    waiters: set[asyncio.Task[None]] = field(default_factory=set)

    def command(self, network: str, lock_fd: int, request: TrainingRequest) -> list[str]:
        cfg = self.config
        cmd = [
            sys.executable, "-m", "nn_server.training.trainer", "--network", network,
            "--state-dir", str(cfg.state_dir), "--lock-fd", str(lock_fd),
            "--promote", request.promote, "--keep", str(cfg.keep_versions),
        ]
        if cfg.data_dir is not None:
            cmd += ["--data-dir", str(cfg.data_dir)]
        epochs = request.epochs if request.epochs is not None else cfg.train_epochs
        if epochs is not None:
            cmd += ["--epochs", str(epochs)]
        if cfg.train_subset is not None:
            cmd += ["--train-subset", str(cfg.train_subset)]
        if cfg.test_subset is not None:
            cmd += ["--test-subset", str(cfg.test_subset)]
        return cmd

    async def start(self, network: str, title: str,
                    request: TrainingRequest | None = None) -> int:
        """Start training ``network``; its pid. Raises ``TrainingInProgress`` (409)."""
        request = request or TrainingRequest()
        state = NetworkState.of(self.config.state_dir, network)
        fd = await self.take_lock(state)
        if fd is None:
            raise TrainingInProgress(
                f"{title} is already training; follow it at /{network}/train/status"
            )
        try:
            # The trainer should use the machine (the workers were limited to one thread) and
            # MXNet's threaded engine, which overlaps work in a training step.
            env = {
                **os.environ, "OMP_NUM_THREADS": str(self.config.train_threads),
                "MXNET_ENGINE_TYPE": TRAINING_ENGINE,
            }
            process = await asyncio.create_subprocess_exec(
                *self.command(network, fd, request), pass_fds=(fd,), start_new_session=True,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, env=env,
            )
            # Known at once, so that a status read or a server stopping in the next second
            # finds the trainer before it has written anything itself.
            state.name_holder(fd, process.pid)
        except Exception as exc:
            record_failure(state, f"could not start the trainer: {exc}")
            raise
        finally:
            # The trainer holds its own copy of the descriptor, and with it the lock.
            os.close(fd)
        log.info("training %s in process %d", network, process.pid)
        waiter = asyncio.create_task(self.reap(state, process))
        self.waiters.add(waiter)
        waiter.add_done_callback(self.waiters.discard)
        return process.pid

    async def take_lock(self, state: NetworkState) -> int | None:
        """The training lock, or None while a training runs. A trainer that has already
        written its verdict is only exiting, so it is worth a moment's wait."""
        for _ in range(LOCK_RETRIES):
            fd = state.try_lock()
            if fd is not None or state.read_status().is_training:
                return fd
            await asyncio.sleep(LOCK_RETRY_S)
        return state.try_lock()

    async def close(self) -> None:
        """Stop waiting for trainers (the server's main process stops them on exit)."""
        for waiter in list(self.waiters):
            waiter.cancel()
        await asyncio.gather(*self.waiters, return_exceptions=True)

    async def reap(self, state: NetworkState, process: asyncio.subprocess.Process) -> None:
        """Wait for the trainer; if it died without writing its own verdict, write one."""
        returncode = await process.wait()
        if returncode == 0:
            return
        if not state.trainer_running() and state.read_status().is_training:
            record_failure(state, describe_exit(returncode))
        log.warning("trainer process %d: %s", process.pid, describe_exit(returncode))


def record_failure(state: NetworkState, reason: str) -> None:
    """Write the verdict for a trainer that could not write its own."""
    state.write_status(state.read_status().failed(reason, time.strftime(DATETIME_FORMAT)))
