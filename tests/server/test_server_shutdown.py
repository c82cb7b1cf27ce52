"""Graceful shutdown: SIGTERM with requests in flight answers them, then exits cleanly."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import SERVING_LINE, LiveServer, _pump, basic_auth, launch, start_server
from tests.server.conftest import IMAGES, b64, wait_for

REQUESTS = 40
WORKERS = 2
# Each worker's batcher holds its first batch this long, so that at SIGTERM every request
# has certainly been received and is waiting inside the server: in flight, not in a socket.
# Generous, because the census below must finish inside it even on a loaded CI machine
# (2 s was once too short there); the close waits for the hold, so it costs a few seconds.
HOLD_MS = 6000


async def readiness(live: LiveServer, headers: dict[str, str]) -> dict[int, dict]:
    """Each worker's latest /ready body, by pid, from many new connections at once (the
    kernel hands each connection to one worker)."""
    seen: dict[int, dict] = {}

    async def one() -> None:
        async with aiohttp.ClientSession(headers=headers) as fresh, \
                fresh.get(live.url + "/ready") as resp:
            body = await resp.json()
            seen[body["worker"]] = body

    await asyncio.gather(*(one() for _ in range(16)))
    return seen


async def every_worker_ready(live: LiveServer, headers: dict[str, str]) -> None:
    """Until the manager counts both workers live. Sanic's main process deadlocks on a
    SIGTERM that arrives before every worker has reported for duty (its wait_for_ack loop
    re-sends the stop message to itself), so this test signals a server that has fully
    started: the workers' census comes from the manager's own shared state."""

    async def ready() -> bool:
        bodies = (await readiness(live, headers)).values()
        return any(b.get("workers", {}).get("live") == WORKERS for b in bodies)

    await wait_for(ready, timeout=60, every=0.05)


async def test_sigterm_answers_what_is_in_flight_and_exits_cleanly() -> None:
    body = {"image": b64(IMAGES[0])}
    env = {"NN_MAX_DELAY_MS": str(HOLD_MS), "NN_MAX_BATCH": "1024"}
    with start_server("127.0.0.1:0", "--workers", str(WORKERS), env=env) as live:
        headers = {"Authorization": basic_auth(*live.auth)}
        async with aiohttp.ClientSession(headers=headers) as http:
            await every_worker_ready(live, headers)

            async def classify() -> int | str:
                try:
                    async with http.post(live.url + "/lenet/classify", json=body) as resp:
                        await resp.json()  # every answer, errors included, is JSON
                        return resp.status
                except aiohttp.ClientConnectionError as exc:
                    return type(exc).__name__

            tasks = [asyncio.ensure_future(classify()) for _ in range(REQUESTS)]
            queued: dict[int, int] = {}

            async def all_waiting() -> bool:  # received, and waiting in the batchers
                for pid, body in (await readiness(live, headers)).items():
                    queued[pid] = body["batching"]["lenet"]["queued"]
                return sum(queued.values()) == REQUESTS

            await wait_for(all_waiting, timeout=HOLD_MS / 1000 - 1, every=0.02)
            live.process.send_signal(signal.SIGTERM)
            outcomes = collections.Counter(await asyncio.gather(*tasks))
        code = await asyncio.get_running_loop().run_in_executor(None, live.process.wait, 20)
        output = live.output()
    print(f"\noutcomes after SIGTERM: {dict(outcomes)}")
    assert code == 0, output
    # Every request in flight at the signal is answered: none refused, none dropped.
    assert outcomes == {200: REQUESTS}, outcomes
    assert "Traceback" not in output, output


@pytest.mark.parametrize("delay_s", [0.0, 0.3, 1.0])
def test_sigterm_during_start_up_stops_cleanly(tmp_path: Path, delay_s: float) -> None:
    # Signalled as soon as it says where it serves (its workers are still starting: they
    # load the networks), or a little later: it must finish starting, then stop, not hang.
    process = launch(["--workers", str(WORKERS), "127.0.0.1:0"], tmp_path)
    lines: deque[str] = deque(maxlen=2000)
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not any(SERVING_LINE.search(line) for line in list(lines)):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.01)
        time.sleep(delay_s)  # where in the start-up the signal lands, not a wait for it
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("the server hung after SIGTERM:\n" + "".join(lines)) from None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = "".join(lines)
    assert code == 0, output
    assert "Traceback" not in output, output
