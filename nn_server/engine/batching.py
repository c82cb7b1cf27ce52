"""Adaptive micro-batching: many concurrent requests, one batched forward pass.

Requests put their input on a queue and await a future. One consumer task takes whatever
has queued (up to ``max_batch``) and runs it as one batch in a worker thread, so the event
loop never blocks. There is no fixed wait: an item that arrives at an idle batcher runs at
once (≈1 ms latency at low load), and under load the queue fills while the previous batch
computes, which is exactly when batching pays. ``max_delay`` optionally holds a small batch
a little longer to gather more.

The batch function returns one result *or exception* per item, so a bad input fails only
its own request.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


POLL_S = 0.0005
"""How often a batch waiting out ``max_delay`` looks for new items."""


class BatcherClosed(RuntimeError):
    """The batcher is shutting down and takes no new work."""


@dataclass(frozen=True)
class BatchStats:
    """Counters for metrics and tests."""

    batches: int
    items: int
    largest: int
    sizes: dict[int, int]
    """How many forward passes took each batch size."""
    queued: int = 0
    """Items waiting for a forward pass now."""


class MicroBatcher(Generic[In, Out]):
    """Run ``function`` over batches of submitted items, in ``executor`` (one thread by default)."""

    def __init__(
        self,
        function: Callable[[Sequence[In]], Sequence[Out | BaseException]],
        *,
        max_batch: int = 64,
        max_delay: float = 0.0,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.function = function
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._own_executor = executor is None
        self.executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="batcher"
        )
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._waiting = 0  # submitted, not yet handed to the batch function
        self._batches = self._items = self._largest = 0
        self._sizes: collections.Counter[int] = collections.Counter()

    @property
    def stats(self) -> BatchStats:
        return BatchStats(self._batches, self._items, self._largest, dict(self._sizes),
                          self._waiting)

    def start(self) -> None:
        """Start the consumer on the running loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._consume())

    async def submit(self, item: In) -> Out:
        """Queue ``item`` and wait for its own result (or its own exception)."""
        if self._closing:
            raise BatcherClosed("the server is shutting down")
        self.start()
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        self._waiting += 1
        return await future

    async def submit_many(self, items: Sequence[In]) -> list[Out | BaseException]:
        """Queue several items at once; results (or exceptions) come back in order."""
        if len(items) == 1:  # the common request: no task for gather to wrap it in
            try:
                return [await self.submit(items[0])]
            except Exception as exc:  # as gather(return_exceptions=True) hands it back
                return [exc]
        results = await asyncio.gather(*(self.submit(i) for i in items), return_exceptions=True)
        return list(results)

    async def close(self) -> None:
        """Stop taking work, finish everything already queued, then stop the consumer."""
        self._closing = True
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_executor:
            self.executor.shutdown(wait=True)

    async def _gather(self) -> list[tuple[In, asyncio.Future[Out]]]:
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_delay
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            # Poll rather than wait_for(queue.get()): cancelling a get that has just been
            # handed an item can lose that item, and with it a request, on Python < 3.12.
            await asyncio.sleep(min(remaining, POLL_S))
        return batch

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            # Requests whose client went away are dropped before we spend compute on them.
            self._waiting -= len(batch)
            live = [(item, fut) for item, fut in batch if not fut.cancelled()]
            try:
                if live:
                    results: Sequence[Out | BaseException] = await loop.run_in_executor(
                        self.executor, self.function, [item for item, _ in live]
                    )
                    if len(results) != len(live):
                        raise RuntimeError(
                            f"batch function returned {len(results)} results for {len(live)}"
                        )
                    for (_, fut), result in zip(live, results, strict=True):
                        if fut.done():
                            continue
                        if isinstance(result, BaseException):
                            fut.set_exception(result)
                        else:
                            fut.set_result(result)
                    self._batches += 1
                    self._items += len(live)
                    self._largest = max(self._largest, len(live))
                    self._sizes[len(live)] += 1
            except Exception as exc:  # the batch function itself broke: fail this batch only
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
            finally:
                for _ in batch:
                    self._queue.task_done()
