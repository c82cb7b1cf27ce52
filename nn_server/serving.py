"""The networks one worker serves, kept on the newest weights without failing a request.

Each worker polls every network's ``current.json`` with a single ``stat`` every
``reload_interval_s``. When the pointer moves, the new weights are loaded into a *new*
``Network`` in full, and only then does the reference swap; a request holds the reference
it started with, so it finishes on the old weights and the next one gets the new. If
loading fails, the old network keeps serving and the next tick tries again.

MXNet's cached graphs are not safe to call from several threads at once, so inference
(and loading, which runs a warm-up inference) happens on one thread per worker; decoding
images runs in the default thread pool beside it. Requests wait for those threads, never
block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nn_server.networks import REGISTRY, Network, Prediction
from nn_server.preprocessing import ImageError
from nn_server.state import NetworkState

log = logging.getLogger("nn_server")


@dataclass
class Served:
    """One network in this worker: its state files and the ``Network`` answering now."""

    cls: type[Network]
    state: NetworkState
    network: Network | None = None
    signature: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Outcome:
    """A classified batch: one prediction or image error per input, and which weights."""

    results: list[Prediction | ImageError]
    version: str


@dataclass
class Models:
    """Every registered network, for one worker process."""

    state_dir: Path
    served: dict[str, Served] = field(default_factory=dict)
    inference: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="nn-inference")
    )

    def __post_init__(self) -> None:
        for name, cls in REGISTRY.items():
            self.served[name] = Served(cls, NetworkState.of(self.state_dir, name))

    def versions(self) -> dict[str, str | None]:
        return {name: s.network.version if s.network else None for name, s in self.served.items()}

    @property
    def ready(self) -> bool:
        return all(s.network is not None for s in self.served.values())

    async def refresh(self) -> None:
        """Load any network whose ``current.json`` moved since the last look."""
        loop = asyncio.get_running_loop()
        for name, served in self.served.items():
            signature = served.state.pointer_signature()
            if signature is None or signature == served.signature:
                continue
            pointer = served.state.pointer()
            if pointer is None:
                continue
            if served.network is None or served.network.version != pointer.version:
                network = await loop.run_in_executor(
                    self.inference, load, served.cls, pointer.weights
                )
                served.network = network
                log.info("%s now serves weights %s", name, network.version)
            served.signature = signature

    async def watch(self, interval_s: float) -> None:
        """``refresh`` forever; a failed load is logged and retried on the next tick."""
        while True:
            try:
                await self.refresh()
            except Exception:  # keep serving the old weights
                log.exception("could not load new weights; still serving the old ones")
            await asyncio.sleep(interval_s)

    async def classify(self, name: str, images: Sequence[bytes]) -> Outcome:
        """Classify encoded images with the network ``name`` serves at this moment."""
        network = self.served[name].network
        if network is None:
            raise LookupError(name)
        inputs = await asyncio.gather(*(asyncio.to_thread(prepare, network, d) for d in images))
        valid = [x for x in inputs if isinstance(x, np.ndarray)]
        predictions: list[Prediction] = []
        if valid:
            loop = asyncio.get_running_loop()
            predictions = await loop.run_in_executor(self.inference, predict, network, valid)
        ordered = iter(predictions)
        results = [next(ordered) if isinstance(x, np.ndarray) else x for x in inputs]
        return Outcome(results, network.version or "")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.inference.shutdown(wait=False, cancel_futures=True)


def load(cls: type[Network], weights: Path) -> Network:
    network = cls()
    network.initialize(weights)
    return network


def prepare(network: Network, data: bytes) -> npt.NDArray[np.float32] | ImageError:
    try:
        return network.preprocess(data)
    except ImageError as exc:
        return exc


def predict(network: Network, inputs: list[npt.NDArray[np.float32]]) -> list[Prediction]:
    return network.postprocess(network.infer(np.stack(inputs)))
