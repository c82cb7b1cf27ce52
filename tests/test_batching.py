"""The micro-batcher's semantics, with a recording batch function instead of a network."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from nn_server.engine.batching import BatcherClosed, MicroBatcher


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
    # One item (the common request) takes a shorter path: the same answers.
    batcher = MicroBatcher(Recorder(delay=0.01), max_batch=16)
    good, bad = await batcher.submit_many([3]), await batcher.submit_many([-2])
    await batcher.close()
    assert good == [9]
    assert len(bad) == 1 and isinstance(bad[0], ValueError) and str(bad[0]) == "bad -2"
    [closed] = await batcher.submit_many([1])  # Models.classify turns it into a 503
    assert isinstance(closed, BatcherClosed)


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


async def test_idle_batcher_runs_at_once_without_waiting_for_company(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no batching window the consumer never sleeps: a lone item goes at once."""
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=64, max_delay=0.0)

    async def no_waiting(delay: float) -> None:
        raise AssertionError(f"the batcher waited {delay} s for company")

    monkeypatch.setattr("nn_server.engine.batching.asyncio.sleep", no_waiting)
    assert await batcher.submit(3) == 9
    await batcher.close()
    assert fn.batches == [[3]]


async def test_max_delay_gathers_a_batch_and_bounds_the_wait() -> None:
    fn = Recorder()
    batcher = MicroBatcher(fn, max_batch=3, max_delay=30.0)

    async def late(i: int, after: asyncio.Event, then: asyncio.Event) -> int:
        await after.wait()
        answer = asyncio.ensure_future(batcher.submit(i))
        await asyncio.sleep(0)  # it is queued
        then.set()
        return await answer

    start, second, third, done = (asyncio.Event() for _ in range(4))
    start.set()
    # Arrivals in sequence: a window of 30 s would hold them; max_batch closes it at three.
    results = await asyncio.wait_for(asyncio.gather(
        late(1, start, second), late(2, second, third), late(3, third, done)), timeout=10)
    assert results == [1, 4, 9]
    assert fn.batches == [[1, 2, 3]], "items arriving within max_delay share one batch"

    lone = MicroBatcher(fn, max_batch=64, max_delay=0.05)
    assert await asyncio.wait_for(lone.submit(4), timeout=10) == 16, "the wait is bounded"
    await batcher.close()
    await lone.close()


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


class Weights:
    """Stands in for a loaded ``Network``: answers with its own version and counts passes."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.passes: list[int] = []

    def classify_each(self, images: Sequence[bytes]) -> list[str]:
        self.passes.append(len(images))
        return [f"{self.version}:{image.decode()}" for image in images]


def test_a_batch_that_spans_a_swap_runs_each_request_on_the_weights_it_started_with() -> None:
    from nn_server.engine.serving import Served
    from nn_server.networks.lenet import LeNet

    old, new = Weights("old"), Weights("new")
    served = Served(LeNet, store=None)  # type: ignore[arg-type]  # not used by a batch
    items = [(old, b"a"), (new, b"b"), (old, b"c")]
    results = served.classify_batch(items)  # type: ignore[arg-type]  # duck-typed weights
    assert results == ["old:a", "new:b", "old:c"]  # type: ignore[comparison-overlap]
    assert (old.passes, new.passes) == ([2], [1]), "one forward pass per set of weights"
