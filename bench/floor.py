"""``python -m bench floor``: where a c=32 request's CPU goes, against Sanic's own floor.

Three measurements in one run, each under the same closed loop (wrk when installed) over
the corpus of ``python -m bench``:

* the production server: its requests/s, and the CPU per request of each worker's event
  loop thread (HTTP, middleware, JSON, the hand-off) and of its inference thread (decode,
  preprocess, forward pass), read from ``/proc/<pid>/task/<tid>/stat``;
* a bare Sanic app (``bench/bare_app.py``: the same route, ``json.loads`` and base64 of
  the body and a JSON answer, no middleware, no model) with as many workers: what any
  Sanic route costs on this machine;
* a minimal asyncio server (``bench/raw_app.py``: the same model, batcher and answer
  behind plain asyncio and uvloop, no framework) with as many processes: what the route
  costs without Sanic's request cycle;
* the in-process ceiling, as ``python -m bench`` measures it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.ceiling import SERVER_ENV, measure_ceiling
from bench.corpus import make_corpus, single_bodies
from bench.load import LoadResult, run_load
from bench.server import AUTH, CLOCK_TICKS, ROOT, Server, running_server
from bench.services import free_port
from nn_server.web.app import WORKER_HEADER

ROUTE = "/lenet/classify"


@dataclass(frozen=True)
class Threads:
    """CPU seconds of a worker's threads: the event loop (its main thread) and the rest."""

    loop: float
    others: float


def thread_seconds(pid: int) -> Threads:
    loop = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        if task.name == str(pid):
            loop += seconds
        else:
            others += seconds
    return Threads(loop, others)


def workers_of(server: Server, workers: int, bodies: list[bytes], tries: int = 200
               ) -> list[int]:
    """The ``workers`` worker processes, as the server names them: each answer's
    ``X-NN-Worker`` header."""
    pids: set[int] = set()
    for i in range(tries):
        request = urllib.request.Request(f"{server.url}{ROUTE}", data=bodies[i % len(bodies)],
                                         headers={"Authorization": AUTH,
                                                  "Content-Type": "application/json"})
        # A new connection each time, so that the kernel spreads them over the workers.
        with urllib.request.urlopen(request, timeout=10) as response:
            pids.add(int(response.headers[WORKER_HEADER]))
        if len(pids) == workers:
            return sorted(pids)
    raise RuntimeError(f"{tries} requests reached workers {sorted(pids)}, not {workers}")


def bare_server(workers: int) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sanic", "bench.bare_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--no-access-logs"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(1.0)  # the listener is up; let every worker start
                return process, f"http://127.0.0.1:{port}"
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the bare Sanic app did not start")


def raw_servers(workers: int) -> tuple[list[subprocess.Popen[str]], str]:
    """``workers`` processes of ``bench/raw_app.py`` on one port, each loaded and listening."""
    port = free_port()
    processes = [subprocess.Popen([sys.executable, "-m", "bench.raw_app", str(port)],
                                  cwd=ROOT, env={**os.environ, **SERVER_ENV},
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for _ in range(workers)]
    for process in processes:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            for p in processes:
                p.kill()
            raise RuntimeError("the minimal asyncio server did not start")
    return processes, f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class Measured:
    """One closed-loop run: its result, the cores the server's processes used, and of those
    the cores of their event-loop threads and of their other threads."""

    result: LoadResult
    cores: float
    loop: float = 0.0
    others: float = 0.0

    def line(self, name: str, ceiling: float | None) -> str:
        result = self.result
        share = f" ({result.rps / ceiling:.2f} of the ceiling)" if ceiling else ""
        text = (f"{name} c={result.concurrency} ({result.tool}): {result.rps:,.0f} "
                f"requests/s{share}, {result.errors} errors, {self.cores:.2f} cores = "
                f"{per_request_us(self.cores, result):.0f} µs a request")
        if self.loop:
            text += (f": event loops {per_request_us(self.loop, result):.0f} µs, inference "
                     f"threads {per_request_us(self.others, result):.0f} µs")
        return text


def measure(url: str, cpu_seconds: Callable[[], float], bodies: list[bytes],
            args: argparse.Namespace, threads_of: Sequence[int] = ()) -> Measured:
    """A warm-up, then the load, with the CPU of the server's processes and, for the
    processes ``threads_of`` names, of their threads."""
    run_load(url, ROUTE, bodies, args.concurrency, 1.0, args.tool)
    threads = [thread_seconds(pid) for pid in threads_of]
    before, started = cpu_seconds(), time.perf_counter()
    result = run_load(url, ROUTE, bodies, args.concurrency, args.duration, args.tool)
    elapsed = time.perf_counter() - started
    cores = (cpu_seconds() - before) / elapsed
    after = [thread_seconds(pid) for pid in threads_of]
    loop = sum(a.loop - b.loop for a, b in zip(after, threads, strict=True)) / elapsed
    others = sum(a.others - b.others for a, b in zip(after, threads, strict=True)) / elapsed
    return Measured(result, cores, loop, others)


def per_request_us(cores: float, result: LoadResult) -> float:
    return 1e6 * cores / result.rps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench floor", description=__doc__)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--tool", choices=("auto", "wrk", "asyncio"), default="auto")
    args = p.parse_args(argv)
    bodies = single_bodies(make_corpus())
    ceiling = measure_ceiling(args.duration, args.workers)

    with running_server(args.workers, {"NN_ACCESS_LOG": "0"}) as server:
        workers = workers_of(server, args.workers, bodies)
        ours = measure(server.url, server.cpu_seconds, bodies, args, workers)

    process, url = bare_server(args.workers)
    try:
        bare_tree = Server(url, process, 0.0)  # for its process tree's CPU time
        bare = measure(url, bare_tree.cpu_seconds, bodies, args)
    finally:
        process.terminate()
        process.wait(timeout=15)

    processes, url = raw_servers(args.workers)
    try:
        trees = [Server(url, raw_process, 0.0) for raw_process in processes]
        raw = measure(url, lambda: sum(t.cpu_seconds() for t in trees), bodies, args,
                      [raw_process.pid for raw_process in processes])
    finally:
        for raw_process in processes:
            raw_process.terminate()
            raw_process.wait(timeout=15)

    print(f"in-process ceiling ({args.workers} processes): {ceiling:,.0f} images/s "
          f"= {1e6 * args.workers / ceiling:.0f} µs of CPU an image")
    print(ours.line("nn-server", ceiling))
    print(bare.line("bare Sanic", None))
    print(raw.line("minimal asyncio server", ceiling))
    return 1 if ours.result.errors or bare.result.errors or raw.result.errors else 0
