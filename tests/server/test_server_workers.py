"""Self-healing: a worker killed with SIGKILL is replaced (and /ready says 503 meanwhile), one
that keeps dying is restarted with a back-off, and when the main process is killed the
workers and Sanic's helper processes go too, so the port is free again."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Iterator

import aiohttp
import pytest

from tests.conftest import LiveServer, start_server
from tests.server.conftest import call, wait_for

WORKERS = 2


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.fixture
def prod() -> Iterator[LiveServer]:
    # No access log: the tests send hundreds of probes, and the output keeps 2,000 lines.
    env = {"NN_ACCESS_LOG": "0"}
    with start_server("127.0.0.1:0", "--workers", str(WORKERS), env=env) as live:
        yield live


async def worker_pids(http: aiohttp.ClientSession, live: LiveServer) -> set[str]:
    """Which workers answer: many connections at once (the kernel gives each connection
    to one worker, and an idle server's sequential ones mostly to the same)."""
    seen: set[str] = set()
    for _ in range(10):
        answers = await asyncio.gather(*(
            call(http, live, "GET", "/health", auth=False, headers={"Connection": "close"})
            for _ in range(16)
        ))
        seen |= {response.headers["X-NN-Worker"] for _, _, response in answers}
        if len(seen) == WORKERS:
            break
    return seen


async def both_workers(http: aiohttp.ClientSession, live: LiveServer) -> set[str]:
    """The two workers' pids, once both answer (the second may still be loading)."""
    seen: set[str] = set()

    async def both() -> bool:
        seen.update(await worker_pids(http, live))
        return len(seen) == WORKERS

    await wait_for(both, timeout=30)
    return seen


async def test_a_killed_worker_is_replaced_and_ready_says_so(prod: LiveServer, http) -> None:
    before = await both_workers(http, prod)
    victim = int(sorted(before)[0])
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()

    saw_503 = False

    async def replaced() -> bool:
        nonlocal saw_503
        status, body, _ = await call(http, prod, "GET", "/ready",
                                     headers={"Connection": "close"})
        if status == 503:
            saw_503 = True
            assert "workers are live" in body["error"], body
            assert body["workers"]["live"] < body["workers"]["expected"] == WORKERS
            return False
        now = await worker_pids(http, prod)
        return len(now) == WORKERS and str(victim) not in now

    await wait_for(replaced, timeout=15, every=0.05)
    assert time.monotonic() - killed_at < 15
    assert saw_503, "/ready must say 503 while a worker is missing"
    status, body, _ = await call(http, prod, "GET", "/ready")
    assert status == 200 and body["workers"] == {"expected": 2, "live": 2, "restarts": 1}
    assert "died" in prod.output() and str(victim) in prod.output()


async def test_a_worker_that_dies_at_once_again_is_restarted_later(prod: LiveServer,
                                                                   http) -> None:
    first = int(sorted(await both_workers(http, prod))[0])
    os.kill(first, signal.SIGKILL)

    async def new_worker() -> int | None:
        pids = set(children(prod.process.pid)) - {first}
        for pid in pids:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"spawn_main" in cmdline.read() and pid not in known:
                    return pid
        return None

    known = set(children(prod.process.pid))
    replacement: int | None = None

    async def spawned() -> bool:
        nonlocal replacement
        replacement = await new_worker()
        return replacement is not None

    await wait_for(spawned, timeout=15, every=0.05)
    assert replacement is not None
    os.kill(replacement, signal.SIGKILL)  # dies right after it started

    await wait_for(lambda: asyncio.sleep(0, "right after starting" in prod.output()),
                   timeout=10, every=0.1)
    await wait_for(lambda: _two_ready(http, prod), timeout=30)


async def _two_ready(http: aiohttp.ClientSession, live: LiveServer) -> bool:
    status, body, _ = await call(http, live, "GET", "/ready")
    return status == 200 and body["workers"]["live"] == WORKERS


def test_killing_the_main_process_leaves_no_orphans() -> None:
    with start_server("127.0.0.1:0", "--workers", str(WORKERS)) as live:
        main = live.process.pid
        family = children(main)
        assert len(family) >= WORKERS + 1, family  # workers and Sanic's manager process
        port = int(live.url.rsplit(":", 1)[1])
        os.kill(main, signal.SIGKILL)
        live.process.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(running(p) for p in family):
            time.sleep(0.05)
        left = [p for p in family if running(p)]
        assert not left, f"processes of the server still run: {left}"
        with socket.socket() as sock:  # the port is free for the next server
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
