"""The micro-batcher's semantics, with a recording batch function instead of a network."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from nn_server.batching import BatcherClosed, MicroBatcher


class Recorder:
    """Squares ints, fails on negatives, remembers every batch it saw."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return [ValueError(f"bad {i}") if i < 0 else i * i for i in items]


async def test_results_come_back_in_order_for_each_caller() -> None:
    fn = Recorder(delay=0.01)
    batcher = MicroBatcher(fn, max_batch=8)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(50)))
    await batcher.close()
    assert results == [i * i for i in range(50)]
    assert sorted(i for b in fn.batches for i in b) == list(range(50))
    assert max(len(b) for b in fn.batches) > 1, "concurrent requests were never batched"


async def test_a_failing_item_fails_only_its_own_request() -> None:
    batcher = MicroBatcher(Recorder(delay=0.01), max_batch=16)
    results = await batcher.submit_many([1, -2, 3, -4, 5])
    await batcher.close()
    assert results[0::2] == [1, 9, 25]
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad -2"
    assert isinstance(results[3], ValueError)


async def test_a_broken_batch_function_fails_that_batch_only() -> None:
    calls = 0

    def flaky(items: Sequence[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("device lost")
        return list(items)

    batcher = MicroBatcher(flaky, max_batch=4)
    with pytest.raises(RuntimeError, match="device lost"):
        await batcher.submit(1)
    assert await batcher.submit(2) == 2
    await batcher.close()


async def test_max_batch_is_respected() -> None:
    fn = Recorder(delay=0.02)
    batcher = MicroBatcher(fn, max_batch=5)
    await asyncio.gather(*(batcher.submit(i) for i in range(23)))
    await batcher.close()
    assert max(len(b) for b in fn.batches) == 5
    assert all(len(b) <= 5 for b in fn.batches)


async def test_idle_batcher_runs_at_once_without_waiting_for_company() -> None:
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=64, max_delay=0.0)
    await batcher.submit(1)  # warm the executor thread
    started = time.perf_counter()
    assert await batcher.submit(3) == 9
    elapsed = time.perf_counter() - started
    await batcher.close()
    assert fn.batches[-1] == [3]
    # Generous bound: a fixed batching window would be ≥ max_delay; here there is none.
    assert elapsed < 0.05


async def test_max_delay_gathers_a_batch_and_bounds_the_wait() -> None:
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=64, max_delay=0.1)

    async def late(i: int, after: float) -> int:
        await asyncio.sleep(after)
        return await batcher.submit(i)

    started = time.perf_counter()
    results = await asyncio.gather(late(1, 0.0), late(2, 0.03), late(3, 0.06))
    elapsed = time.perf_counter() - started
    await batcher.close()
    assert results == [1, 4, 9]
    assert fn.batches == [[1, 2, 3]], "items arriving within max_delay share one batch"
    assert 0.09 <= elapsed < 0.5, "the first item waited about max_delay, not forever"


async def test_close_drains_the_queue_then_refuses_new_work() -> None:
    fn = Recorder(delay=0.01)
    batcher = MicroBatcher(fn, max_batch=4)
    pending = [asyncio.ensure_future(batcher.submit(i)) for i in range(20)]
    await asyncio.sleep(0)  # let them enqueue
    await batcher.close()
    assert [p.result() for p in pending] == [i * i for i in range(20)]
    with pytest.raises(BatcherClosed):
        await batcher.submit(1)


async def test_work_runs_off_the_event_loop_thread() -> None:
    fn = Recorder()
    batcher = MicroBatcher(fn)
    await batcher.submit(1)
    await batcher.close()
    assert threading.current_thread().name not in fn.threads
