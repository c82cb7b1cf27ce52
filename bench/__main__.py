"""``python -m bench``: start the production server on 127.0.0.1 and load /lenet/classify.

``python -m bench soak [--minutes 5]``: minutes of mixed load with a training and a killed
worker (``bench/soak.py``). ``python -m bench proxies``: LeNet's accuracy on handwriting
and camera proxies made from MNIST's test digits (``bench/proxies.py``), and on
other writers' digits drawn from handwriting fonts and strokes (``bench/writers.py``).
``python -m bench cluster``: requests/s through nginx in front of 1, 2 and 3 replicas
sharing Redis and a weights directory, and the swap lag (``bench/cluster.py``).
``python -m bench precision``: the shipped weights' accuracy and forward pass in float and
int8 (``bench/precision.py``). ``python -m bench floor``: a c=32 request's CPU by thread,
against a bare Sanic app's (``bench/floor.py``).

Prints one table: the in-process ceiling, closed-loop points at each concurrency, and a
256-image batch request; with server CPU (cores busy) and RSS (all processes).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

import aiohttp
from rich.console import Console
from rich.table import Table

from bench.ceiling import measure_ceiling
from bench.corpus import batch_body, make_corpus, single_bodies
from bench.load import have_wrk, run_load
from bench.server import AUTH, Server, running_server

BATCH_IMAGES = 256
RAW_MEDIA = "application/octet-stream"
T = TypeVar("T")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per load point")
    p.add_argument("--concurrency", default="1,8,32,64", help="comma-separated load points")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--tool", choices=("auto", "wrk", "asyncio"), default="auto")
    p.add_argument("--smoke", action="store_true",
                   help="a ~2 s run of every stage, to check the command works (CI)")
    p.add_argument("--access-log", action="store_true",
                   help="keep the server's access log on (off by default: a line per request "
                        "to a pipe this process drains costs ~20 %% at c=32)")
    p.add_argument("--json", help="also write the figures to this file")
    return p.parse_args(argv)


async def batch_load(url: str, body: bytes, duration_s: float, clients: int) -> dict[str, Any]:
    """Images/s over ``{"images": [256 × b64]}`` requests from ``clients`` connections, each
    its own session so that the kernel spreads them over the workers."""
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    images = requests = errors = 0
    started = time.perf_counter()

    async def client() -> None:
        nonlocal images, requests, errors
        async with aiohttp.ClientSession(headers=headers) as session:
            while time.perf_counter() - started < duration_s:
                requests += 1
                try:
                    async with session.post(f"{url}/lenet/classify", data=body) as resp:
                        if resp.status != 200:
                            errors += 1
                            continue
                        answer = await resp.json()
                        images += sum(n is not None for n in answer["numbers"])
                except aiohttp.ClientError:
                    errors += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {"images_per_s": images / elapsed, "requests": requests, "errors": errors}


def measured(server: Server, run: Callable[[], T]) -> tuple[T, float, float]:
    """Run ``run()`` and return its result, the server's busy cores and its RSS after."""
    cpu0, t0 = server.cpu_seconds(), time.perf_counter()
    result = run()
    busy = (server.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
    return result, busy, server.rss_mb()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["soak"]:
        from bench.soak import main as soak

        return soak(argv[1:])
    if argv[:1] == ["cluster"]:
        from bench.cluster import main as cluster

        return cluster(argv[1:])
    if argv[:1] == ["floor"]:
        from bench.floor import main as floor

        return floor(argv[1:])
    if argv[:1] == ["precision"]:
        from bench.precision import main as precision

        return precision(argv[1:])
    if argv[:1] == ["proxies"]:
        from bench.proxies import main as proxies

        return proxies(argv[1:])
    args = parse(argv)
    duration = 0.5 if args.smoke else args.duration
    points = [1, 8] if args.smoke else [int(c) for c in args.concurrency.split(",")]
    tool = args.tool if args.tool != "auto" else ("wrk" if have_wrk() else "asyncio")
    console = Console(width=max(120, Console().width))
    corpus = make_corpus()
    bodies = single_bodies(corpus)
    ceiling = measure_ceiling(duration, args.workers)

    rows: list[tuple[str, str, str, str, str, str, str, str]] = []
    figures: dict[str, Any] = {"ceiling_images_per_s": ceiling, "points": []}
    rows.append((f"in-process ceiling ({args.workers} proc.)", f"{ceiling:,.0f} img/s",
                 "", "", "", "", "", ""))
    access_log = {"NN_ACCESS_LOG": "1" if args.access_log else "0"}
    with running_server(args.workers, access_log) as server:
        time.sleep(0.5)
        idle_rss, idle_pss = server.rss_mb(), server.pss_mb()
        figures.update(ready_s=server.ready_s, idle_rss_mb=idle_rss, idle_pss_mb=idle_pss)
        run_load(server.url, "/lenet/classify", bodies, 1, min(1.0, duration), tool)  # warm-up
        for c in points:
            result, busy, rss = measured(
                server, functools.partial(run_load, server.url, "/lenet/classify", bodies, c,
                                          duration, tool))
            figures["points"].append({**asdict(result), "rps": result.rps,
                                      "server_cores": busy, "rss_mb": rss})
            rows.append((f"c={c} ({result.tool})", f"{result.rps:,.0f} rps",
                         f"{result.p50_ms:.2f}", f"{result.p90_ms:.2f}", f"{result.p99_ms:.2f}",
                         str(result.errors), f"{busy:.2f}", f"{rss:.0f}"))
        # The same images as raw bodies (what TorchServe takes): no JSON, no base64.
        raw_c = 32 if 32 in points else points[-1]
        raw, busy, rss = measured(
            server, functools.partial(run_load, server.url, "/lenet/classify", corpus, raw_c,
                                      duration, tool, RAW_MEDIA))
        figures["raw_body"] = {**asdict(raw), "rps": raw.rps, "server_cores": busy,
                               "rss_mb": rss}
        rows.append((f"c={raw_c} raw image body ({raw.tool})", f"{raw.rps:,.0f} rps",
                     f"{raw.p50_ms:.2f}", f"{raw.p90_ms:.2f}", f"{raw.p99_ms:.2f}",
                     str(raw.errors), f"{busy:.2f}", f"{rss:.0f}"))
        body = batch_body(corpus, BATCH_IMAGES)
        batch, busy, rss = measured(
            server, lambda: asyncio.run(batch_load(server.url, body, duration, 2 * args.workers)))
        figures["batch_256"] = {**batch, "server_cores": busy, "rss_mb": rss}
        rows.append((f"batch of {BATCH_IMAGES}", f"{batch['images_per_s']:,.0f} img/s",
                     "", "", "", str(batch["errors"]), f"{busy:.2f}", f"{rss:.0f}"))

    table = Table(title=f"nn-server /lenet/classify — {args.workers} workers, {duration:g} s "
                        f"per point, access log {'on' if args.access_log else 'off'}, "
                        f"{platform.node()} ({os.cpu_count()} cores)")
    for header in ("load", "throughput", "p50 ms", "p90 ms", "p99 ms", "errors",
                   "server cores", "RSS MB"):
        table.add_column(header, justify="left" if header == "load" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"idle RSS {idle_rss:.0f} MB, PSS {idle_pss:.0f} MB (all server processes); "
                  f"ready to serve "
                  f"{server.ready_s:.2f} s after start; load tool: {tool}")
    for point in [*figures["points"], figures["raw_body"]]:
        point["of_ceiling"] = point["rps"] / ceiling
    at_32 = next((p for p in figures["points"] if p["concurrency"] == 32), None)
    if at_32 is not None:
        console.print(f"c=32 serves {at_32['of_ceiling']:.2f} of the in-process ceiling "
                      f"(JSON body), {figures['raw_body']['of_ceiling']:.2f} with raw "
                      "image bodies")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    errors = sum(p["errors"] for p in figures["points"]) + figures["batch_256"]["errors"] \
        + figures["raw_body"]["errors"]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
