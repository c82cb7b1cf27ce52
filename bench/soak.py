"""``python -m bench soak``: minutes of mixed load with faults, on the production server.

For ``--minutes`` (default 5) at ``--concurrency`` connections (default 64), a mix of
requests runs against two workers: single classifies of good and bad images, 16-image
batches with bad images among them, training-status and metrics reads. A quarter of the
way in a (short) training starts; half-way through one worker is killed with SIGKILL.

Every answer is sorted by kind: ``ok`` (what the request should get: 200, or 400 for a bad
image), ``lost with the killed worker`` (a connection that worker was holding when it died:
a refused or reset connection within seconds of the kill) and ``unexpected`` (anything
else: a 5xx, a wrong status, a transport error at any other time). The report gives
requests/s, p50/p99 per request kind, the errors by kind, the server's RSS (all processes)
after the warm-up and at the end, and the worker restarts. The exit status is 0 when there
was no unexpected answer and RSS grew by less than 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.corpus import batch_body, make_corpus, single_bodies
from bench.server import AUTH, Server, running_server

KILL_WINDOW_S = 5.0
"""Transport errors this soon after the kill count as requests lost with the worker."""
MIX = (("classify", 0.62), ("bad image", 0.12), ("batch", 0.12), ("status", 0.08),
       ("metrics", 0.06))
WORKERS = 2
RSS_GROWTH_LIMIT = 0.10
TRAINING_ENV = {"NN_TRAIN_EPOCHS": "1", "NN_TRAIN_SUBSET": "5000", "NN_TEST_SUBSET": "2000"}
BAD_IMAGE = json.dumps({"image": "bm90IGFuIGltYWdl"}).encode()  # base64 of "not an image"


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    examples: dict[str, str] = field(default_factory=dict)
    killed_at: float | None = None

    def record(self, kind: str, outcome: str, seconds: float, detail: str = "") -> None:
        self.outcomes[outcome] += 1
        if outcome == "ok":
            self.latencies[kind].append(seconds)
        elif detail:
            self.examples.setdefault(outcome, detail[:200])

    def transport_error(self, kind: str, exc: BaseException, seconds: float) -> None:
        now = time.monotonic()
        lost = self.killed_at is not None and 0 <= now - self.killed_at < KILL_WINDOW_S
        outcome = "lost with the killed worker" if lost else f"unexpected: {type(exc).__name__}"
        self.record(kind, outcome, seconds, str(exc))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def client(server: Server, bodies: list[bytes], batch: bytes, tally: Tally,
                 stop: asyncio.Event, rng: random.Random) -> None:
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    async with aiohttp.ClientSession(headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=30)) as http:
        while not stop.is_set():
            kind = rng.choices(kinds, weights)[0]
            method, path, body, expected = {
                "classify": ("POST", "/lenet/classify", rng.choice(bodies), 200),
                "bad image": ("POST", "/lenet/classify", BAD_IMAGE, 400),
                "batch": ("POST", "/lenet/classify", batch, 200),
                "status": ("GET", "/lenet/train/status", None, 200),
                "metrics": ("GET", "/metrics", None, 200),
            }[kind]
            started = time.monotonic()
            try:
                async with http.request(method, server.url + path, data=body) as response:
                    text = await response.read()
                    seconds = time.monotonic() - started
                    if response.status == expected:
                        tally.record(kind, "ok", seconds)
                    else:
                        tally.record(kind, f"unexpected: {response.status}", seconds,
                                     text.decode(errors="replace"))
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                tally.transport_error(kind, exc, time.monotonic() - started)


async def ready_workers(server: Server) -> dict[str, Any]:
    async with aiohttp.ClientSession(headers={"Authorization": AUTH}) as http, \
            http.get(server.url + "/ready") as response:
        return dict(await response.json())


async def wait_workers(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = await ready_workers(server)
        if body.get("ready") and body.get("workers", {}).get("live") == WORKERS:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("the workers never came up")


async def soak(server: Server, minutes: float,
               concurrency: int) -> tuple[Tally, dict[str, Any]]:
    corpus = make_corpus()
    bodies, batch = single_bodies(corpus), batch_body(corpus, 16)
    tally, stop = Tally(), asyncio.Event()
    await wait_workers(server)
    # Warm up, then measure the memory the server settles at.
    warm = [asyncio.create_task(client(server, bodies, batch, Tally(), stop, random.Random(i)))
            for i in range(concurrency)]
    await asyncio.sleep(min(10.0, minutes * 6))
    stop.set()
    await asyncio.gather(*warm)
    facts: dict[str, Any] = {"rss_start_mb": server.rss_mb()}

    stop = asyncio.Event()
    duration = minutes * 60
    started = time.monotonic()
    tasks = [asyncio.create_task(client(server, bodies, batch, tally, stop, random.Random(i)))
             for i in range(concurrency)]
    async with aiohttp.ClientSession(headers={"Authorization": AUTH}) as http:
        await asyncio.sleep(duration / 4)
        async with http.get(server.url + "/lenet/train") as response:
            facts["training_started"] = response.status
        await asyncio.sleep(duration / 4)
        victim = int((await ready_workers(server))["worker"])
        os.kill(victim, signal.SIGKILL)
        tally.killed_at = time.monotonic()
        facts["killed_worker"] = victim
        await asyncio.sleep(max(0.0, duration - (time.monotonic() - started)))
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        async with http.get(server.url + "/lenet/train/status") as response:
            status = await response.json()
    facts.update(
        elapsed_s=elapsed, rss_end_mb=server.rss_mb(),
        restarts=(await ready_workers(server)).get("workers"),
        training={k: status.get(k) for k in ("state", "accuracy", "promoted", "reason", "error")},
    )
    return tally, facts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    env = {**TRAINING_ENV, "NN_ACCESS_LOG": "0"}
    with running_server(WORKERS, env) as server:
        tally, facts = asyncio.run(soak(server, args.minutes, args.concurrency))
    total = sum(tally.outcomes.values())
    growth = facts["rss_end_mb"] / facts["rss_start_mb"] - 1
    unexpected = sum(n for k, n in tally.outcomes.items() if k.startswith("unexpected"))
    print(f"soak: {args.minutes:g} min at c={args.concurrency}, {total:,} requests, "
          f"{total / facts['elapsed_s']:,.0f} rps")
    for kind, latencies in sorted(tally.latencies.items()):
        print(f"  {kind:10} {len(latencies):8,} ok   p50 {percentile(latencies, 0.5):7.2f} ms"
              f"   p99 {percentile(latencies, 0.99):7.2f} ms")
    print("answers by kind: " + ", ".join(f"{k} {n:,}" for k, n in tally.outcomes.most_common()))
    for outcome, example in tally.examples.items():
        print(f"  e.g. {outcome}: {example}")
    print(f"worker {facts['killed_worker']} killed half-way; workers now {facts['restarts']}")
    print(f"training started ({facts['training_started']}), ended: {facts['training']}")
    print(f"RSS {facts['rss_start_mb']:.0f} MB after warm-up → {facts['rss_end_mb']:.0f} MB at "
          f"the end ({growth:+.1%})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"outcomes": dict(tally.outcomes), **facts,
                       "p50_ms": {k: percentile(v, 0.5) for k, v in tally.latencies.items()},
                       "p99_ms": {k: percentile(v, 0.99) for k, v in tally.latencies.items()}},
                      f, indent=2, default=str)
    return 0 if unexpected == 0 and growth < RSS_GROWTH_LIMIT else 1
