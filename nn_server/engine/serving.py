"""The networks one worker serves, kept on the newest weights without failing a request.

Each worker polls every network's pointer cheaply (one ``stat`` of ``current.json``, or one
Redis GET in a cluster) every ``reload_interval_s``; in a cluster it also hears each move
at once from the store's pub/sub (``Store.swaps``), polling being the fallback. When the
pointer moves, the new weights are loaded into a *new*
``Network`` in full, and only then does the reference swap; a request holds the reference
it started with, so it finishes on the old weights and the next one gets the new. If
loading fails, the old network keeps serving and the next tick tries again.

MXNet's cached graphs are not safe to call from several threads at once, so decoding,
inference and loading (which runs a warm-up inference) happen on one thread per worker.
Requests meet there through a ``MicroBatcher``: whatever has queued while the previous
batch computed runs as one forward pass, which is where a small network's throughput
comes from (one image per call costs ~1 ms of framework overhead; 64 cost little more).
Requests await the thread; the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from nn_server.core.errors import Unavailable
from nn_server.core.files import weights_version
from nn_server.core.locations import StoreLocation
from nn_server.engine.batching import BatcherClosed, BatchStats, MicroBatcher
from nn_server.networks import Network, Prediction, Registry
from nn_server.networks.export import export_in_process
from nn_server.networks.images import ImageError
from nn_server.networks.precision import served_model
from nn_server.store import Store, open_store
from nn_server.store.base import Pointer, StateError, UnknownVersion

Result = Prediction | ImageError
"""One image's answer: its prediction, or why it cannot be classified."""
Item = tuple[Network, bytes]
"""One image queued with the network (the weights) its request started with."""

log = logging.getLogger("nn_server")


class ShuttingDown(Unavailable):
    """The worker is stopping and takes no new images."""


@dataclass
class Served:
    """One network in this worker: its store and the ``Network`` answering now."""

    cls: type[Network]
    store: Store
    network: Network | None = None
    signature: Hashable | None = None
    batcher: MicroBatcher[Item, Result] | None = None
    on_batch: Callable[[str, int], None] | None = None

    def classify_batch(self, items: Sequence[Item]) -> list[Result]:
        """Runs on the inference thread: one forward pass per network among ``items`` (one,
        except in the batch during which the weights were swapped)."""
        if self.on_batch is not None:
            self.on_batch(self.cls.name, len(items))
        results: list[Result | None] = [None] * len(items)
        groups: dict[int, tuple[Network, list[int]]] = {}
        for i, (network, _) in enumerate(items):
            groups.setdefault(id(network), (network, []))[1].append(i)
        for network, indices in groups.values():
            for i, result in zip(indices, network.classify_each([items[i][1] for i in indices]),
                                 strict=True):
                results[i] = result
        return results  # type: ignore[return-value]  # every slot is filled above


@dataclass(frozen=True)
class Outcome:
    """A request's images classified: which weights answered, and one result per image
    (the shape it keeps up to the JSON)."""

    version: str
    results: list[Result]


@dataclass
class Models:
    """Every registered network, for one worker process."""

    networks: Registry
    location: StoreLocation | Path
    """Where the networks' stores are (a bare path: a state directory)."""
    max_batch: int = 64
    max_delay_ms: float = 0.0
    batching: bool = True
    on_batch: Callable[[str, int], None] | None = None
    """Told each forward pass's network and size (for the metrics)."""
    runtime: str = "onnx"
    """What runs the forward pass: ``onnx`` (ONNX Runtime, the default) or ``mxnet``."""
    precision: str = "int8"
    """ONNX Runtime's: ``int8`` where the network's graph allows it, or ``float``."""
    served: dict[str, Served] = field(default_factory=dict)
    refreshing: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One refresh at a time (the poller's and the pub/sub's)."""
    inference: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="nn-inference")
    )

    def __post_init__(self) -> None:
        # Images are small: OpenCV's thread pool would cost more than it saves, and with
        # one worker per core it would oversubscribe the CPUs.
        cv2.setNumThreads(1)
        for name, cls in self.networks.items():
            served = Served(cls, open_store(self.location, name), on_batch=self.on_batch)
            served.batcher = MicroBatcher(
                served.classify_batch,
                max_batch=self.max_batch if self.batching else 1,
                max_delay=self.max_delay_ms / 1000,
                executor=self.inference,
            )
            self.served[name] = served

    def versions(self) -> dict[str, str | None]:
        return {name: s.network.version if s.network else None for name, s in self.served.items()}

    def is_ready(self, name: str) -> bool:
        """Whether ``name`` has weights loaded in this worker (else it answers 503)."""
        return self.served[name].network is not None

    def batch_sizes(self) -> dict[str, dict[int, int]]:
        """Per network: how many forward passes took each batch size."""
        return {name: stats.sizes for name, stats in self.batch_stats().items()}

    def batch_stats(self) -> dict[str, BatchStats]:
        """Per network: forward passes run, images they took, batch sizes."""
        return {name: s.batcher.stats for name, s in self.served.items() if s.batcher}

    @property
    def ready(self) -> bool:
        """Every network has weights loaded."""
        return all(s.network is not None for s in self.served.values())

    async def refresh(self) -> None:
        """Load any network whose pointer moved since the last look. Networks are
        independent: one that cannot load keeps its old weights (or stays unready) and is
        tried again when its pointer next moves, while the others go on."""
        async with self.refreshing:
            for name, served in self.served.items():
                await self.refresh_one(name, served)

    async def refresh_one(self, name: str, served: Served) -> None:
        # The store's calls block (Redis, an S3 download): each runs in a thread, so a hung
        # Redis or a slow download does not stall the requests this worker is serving.
        signature = await asyncio.to_thread(served.store.pointer_signature)
        if signature is None or signature == served.signature:
            return
        pointer = await asyncio.to_thread(served.store.pointer)
        served.signature = signature
        if pointer is None:
            return
        if served.network is not None and served.network.version == pointer.version:
            return
        network = await self.load_first(served, pointer)
        if network is not None:
            served.network = network
            log.info("%s now serves weights %s", name, network.version)

    async def listen(self) -> None:
        """Refresh as soon as the store says a pointer moved (a cluster's pub/sub; a local
        store says nothing and this returns at once)."""
        if not self.served:
            return
        first = next(iter(self.served.values()))
        async for _network in first.store.swaps():  # one channel for every network
            try:
                await self.refresh()
            except Exception:
                log.exception("could not load the weights just served")

    async def load_first(self, served: Served, pointer: Pointer) -> Network | None:
        """The network with the served weights, or — if they will not load — the version
        before them, then the shipped weights; a worker never stays broken while good
        weights exist. None (the network answers 503) when nothing loads."""
        candidates = []
        for version in (pointer.version, pointer.previous):
            if not version:
                continue
            try:
                candidates.append(await asyncio.to_thread(served.store.weights_of, version))
            except UnknownVersion:
                log.error("%s: the weights of version %s are missing; trying the next",
                          served.cls.name, version)
            except (StateError, Unavailable) as exc:  # a cluster's weights store is away
                log.error("%s: cannot fetch version %s (%s); trying the next",
                          served.cls.name, version, exc)
        candidates.append(served.cls.shipped_weights())
        loop = asyncio.get_running_loop()
        for weights in candidates:
            try:
                onnx = weights.with_suffix(".onnx")
                if self.runtime == "onnx" and weights.is_file() and not onnx.is_file():
                    log.info("%s: exporting %s to ONNX first", served.cls.name, weights.name)
                    await export_in_process(served.cls, weights, onnx)
                return await loop.run_in_executor(self.inference, load, served.cls, weights,
                                                  self.runtime, self.precision)
            except Exception as exc:  # damaged, missing, or not this network's
                reason = next((line for line in str(exc).splitlines() if line.strip()), "")
                log.error("%s: could not load weights %s (%s: %s)%s", served.cls.name,
                          weights.name, type(exc).__name__, reason[:200],
                          "; trying the next" if weights != candidates[-1]
                          else "; nothing left to serve")
        return None

    async def watch(self, interval_s: float) -> None:
        """``refresh`` forever."""
        while True:
            try:
                await self.refresh()
            except Exception:  # a bug here must not stop the watching
                log.exception("could not look for new weights")
            await asyncio.sleep(interval_s)

    async def classify(self, name: str, images: Sequence[bytes]) -> Outcome:
        """Classify encoded images with the network ``name`` serves; they join the queue
        one by one, so a 256-image request and many 1-image requests batch alike. The
        request keeps the weights it started with, however long it queues."""
        served = self.served[name]
        network = served.network
        if network is None or served.batcher is None:
            raise LookupError(name)
        answers = await served.batcher.submit_many([(network, image) for image in images])
        results: list[Result] = []
        for answer in answers:
            if isinstance(answer, BatcherClosed):
                raise ShuttingDown("the server is shutting down; try again") from None
            if isinstance(answer, BaseException) and not isinstance(answer, ImageError):
                raise answer
            results.append(answer)
        return Outcome(network.version or "", results)

    async def close(self) -> None:
        """Answer everything queued, then stop the inference thread."""
        for served in self.served.values():
            if served.batcher is not None:
                await served.batcher.close()
        with contextlib.suppress(RuntimeError):
            self.inference.shutdown(wait=False, cancel_futures=True)


def load(cls: type[Network], weights: Path, runtime: str, precision: str = "float") -> Network:
    """``cls`` with ``weights``, in ONNX Runtime (their export beside them, or its int8 form
    where the version's record says so) or MXNet."""
    network = cls()
    if runtime == "onnx":
        model, computes = served_model(weights, runtime, precision)
        network.load_onnx(model, weights_version(weights), computes)
    else:
        network.initialize(weights)
    return network
