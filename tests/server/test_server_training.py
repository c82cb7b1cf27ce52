"""Training in the background process: the full cycle under classify load, a trainer
killed with SIGKILL, and the seed-compatible "network is training" behaviour."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import aiohttp
import pytest

from nn_server.store.local import LocalStore
from tests.conftest import LiveServer, start_server
from tests.server.conftest import IMAGES, b64, call, wait_for

WORKERS = 2
LOAD_CLIENTS = 4
PAUSE_S = 0.02


@pytest.fixture(scope="module")
def trainable() -> Iterator[LiveServer]:
    """A production server of its own: these tests change its weights."""
    with start_server("127.0.0.1:0", "--workers", str(WORKERS)) as live:
        yield live


async def status_of(http: aiohttp.ClientSession, live: LiveServer) -> dict:
    status, body, _ = await call(http, live, "GET", "/lenet/train/status")
    assert status == 200, body
    return body


class Load:
    """Concurrent classify requests on fresh connections (so every worker gets some)."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.image = b64(IMAGES[0])
        self.failures: list[str] = []
        self.answers = 0
        self.latest: dict[str, str] = {}  # worker pid → weights version it last answered with
        self.stop = asyncio.Event()

    async def client(self) -> None:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            while not self.stop.is_set():
                try:
                    status, body, response = await call(
                        http, self.live, "POST", "/lenet/classify", json={"image": self.image})
                except Exception as exc:  # any transport error is a failure too
                    self.failures.append(repr(exc))
                    continue
                if status != 200:
                    self.failures.append(f"{status} {body}")
                    continue
                self.answers += 1
                self.latest[response.headers["X-NN-Worker"]] = body["weights_version"]
                # Steady load, but leave the two CPUs some room for the trainer.
                await asyncio.sleep(PAUSE_S)

    async def __aenter__(self) -> Load:
        self.tasks = [asyncio.create_task(self.client()) for _ in range(LOAD_CLIENTS)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)


async def test_full_training_cycle_under_load(trainable: LiveServer, http) -> None:
    live = trainable
    before = await status_of(http, live)
    async with Load(live) as load:
        await wait_for(lambda: asyncio.sleep(0, len(load.latest) == WORKERS), timeout=30)
        assert set(load.latest.values()) == {before["weights_version"]}

        started = time.monotonic()
        status, body, _ = await call(http, live, "GET", "/lenet/train")
        assert status == 200, body
        assert time.monotonic() - started < 10, "train must answer at once, not after training"
        assert isinstance(body["text"], str) and body["state"] == "training"

        status, body, _ = await call(http, live, "GET", "/lenet/train")
        assert status == 409, body
        assert "already training" in body["error"]

        async def progressing() -> bool:
            current = await status_of(http, live)
            assert current["state"] == "training", current
            return current["progress"] is not None and current["progress"]["batch"] >= 1

        await wait_for(progressing)
        progress = (await status_of(http, live))["progress"]
        assert {"epoch", "epochs", "batch", "batches", "loss", "accuracy", "elapsed_s", "eta_s",
                "fraction"} <= progress.keys()

        async def finished() -> bool:
            return (await status_of(http, live))["state"] != "training"

        await wait_for(finished)
        after = await status_of(http, live)
        assert after["state"] == "idle", after
        assert after["error"] is None
        assert after["datetime"] != before["datetime"]
        assert isinstance(after["accuracy"], str) and float(after["accuracy"]) > 50
        new_version = after["weights_version"]
        assert new_version != before["weights_version"]

        # Every worker moves to the new weights without a restart.
        load.latest.clear()

        async def all_switched() -> bool:
            return len(load.latest) == WORKERS and set(load.latest.values()) == {new_version}

        await wait_for(all_switched, timeout=30)
    assert load.failures == []
    assert load.answers > 20
    print(f"\n{load.answers} classify answers during training, 0 failures")


async def test_killed_trainer_is_reported_and_old_weights_keep_serving(
    trainable: LiveServer, http
) -> None:
    live = trainable
    before = await status_of(http, live)
    status, body, _ = await call(http, live, "GET", "/lenet/train")
    assert status == 200, body

    async def mid_epoch() -> bool:
        progress = (await status_of(http, live))["progress"]
        return progress is not None and 1 <= progress["batch"] < progress["batches"] - 2

    await wait_for(mid_epoch, every=0.05)
    os.kill(body["pid"], signal.SIGKILL)

    async def failed() -> bool:
        return (await status_of(http, live))["state"] == "failed"

    await wait_for(failed, timeout=15)
    after = await status_of(http, live)
    assert "killed" in after["error"], after
    # The last good result and weights stay.
    assert after["weights_version"] == before["weights_version"]
    assert (after["accuracy"], after["datetime"]) == (before["accuracy"], before["datetime"])
    status, body, _ = await call(http, live, "POST", "/lenet/classify",
                                 json={"image": b64(IMAGES[0])})
    assert status == 200, body
    assert body["weights_version"] == before["weights_version"]

    # The lock died with the trainer: a new training starts and succeeds.
    status, body, _ = await call(http, live, "GET", "/lenet/train")
    assert status == 200, body

    async def done() -> bool:
        return (await status_of(http, live))["state"] != "training"

    await wait_for(done)
    final = await status_of(http, live)
    assert final["state"] == "idle", final
    assert final["error"] is None and final["datetime"] >= before["datetime"]


async def test_seed_compatible_mode_refuses_while_training(http) -> None:
    with start_server("-d", "127.0.0.1:0", env={"NN_SEED_COMPAT": "1"}) as live:
        image = {"image": b64(IMAGES[0])}
        status, body, _ = await call(http, live, "GET", "/lenet/train")
        assert status == 200, body
        for method, path, kwargs in [("GET", "/lenet/train", {}),
                                     ("GET", "/lenet/train/status", {}),
                                     ("POST", "/lenet/classify", {"json": image})]:
            status, body, _ = await call(http, live, method, path, **kwargs)
            assert status == 503, body
            assert "training" in body["error"]
        # Other routes keep answering.
        status, _, _ = await call(http, live, "GET", "/lenet/about")
        assert status == 200

        async def available() -> bool:
            return (await call(http, live, "GET", "/lenet/train/status"))[0] == 200

        await wait_for(available)
        status, body, _ = await call(http, live, "GET", "/lenet/train/status")
        assert body["state"] == "idle", body
        status, _, _ = await call(http, live, "POST", "/lenet/classify", json=image)
        assert status == 200


async def test_a_trainer_from_another_process_blocks_training(trainable: LiveServer, http) -> None:
    """The lock lives in the state directory, not in a server: a trainer left running by an
    earlier server (here: this test holding the lock) still means 409."""
    lease = LocalStore(trainable.state_dir, "lenet").try_lease()
    assert lease is not None
    try:
        status, body, _ = await call(http, trainable, "GET", "/lenet/train")
        assert status == 409, body
    finally:
        lease.close()
    status, body, _ = await call(http, trainable, "GET", "/lenet/train/status")
    assert body["state"] != "training"
