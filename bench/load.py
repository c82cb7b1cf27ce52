"""Closed-loop load: ``wrk`` when installed (it costs the server little CPU), else asyncio."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.server import AUTH

JSON = "application/json"

WRK_SCRIPT = """
local bodies = {}
for path in io.lines(os.getenv("NN_BENCH_BODIES")) do
  local f = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
local headers = {["Content-Type"] = "%(media)s", ["Authorization"] = "%(auth)s"}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "%(path)s", headers, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "errors": %%d, '
    .. '"p50": %%d, "p90": %%d, "p99": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """One load point: requests answered per second and latency percentiles in ms."""

    tool: str
    concurrency: int
    requests: int
    duration_s: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk), or use --tool asyncio")
    return path


def run_wrk(url: str, path: str, bodies: list[bytes], concurrency: int,
            duration_s: float, media: str = JSON) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="nn-wrk-") as tmp:
        # One file per body: a raw image body holds newlines, so no body is a line.
        paths = [Path(tmp) / f"body{i}" for i in range(len(bodies))]
        for body_path, body in zip(paths, bodies, strict=True):
            body_path.write_bytes(body)
        body_file = Path(tmp) / "bodies.txt"
        body_file.write_text("".join(f"{p}\n" for p in paths))
        script = Path(tmp) / "classify.lua"
        script.write_text(WRK_SCRIPT % {"auth": AUTH, "path": path, "media": media})
        out = subprocess.run(
            [wrk_path(), "-t1", f"-c{concurrency}", f"-d{max(1, round(duration_s))}s",
             "--timeout", "10s", "-s", str(script), url],
            env={"NN_BENCH_BODIES": str(body_file)},
            capture_output=True, text=True, check=True,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    return LoadResult("wrk", concurrency, r["requests"], r["duration_us"] / 1e6, r["errors"],
                      r["p50"] / 1e3, r["p90"] / 1e3, r["p99"] / 1e3)


async def _asyncio_load(url: str, bodies: list[bytes], concurrency: int,
                        duration_s: float, media: str = JSON) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": AUTH, "Content-Type": media}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        started = time.perf_counter()
        stop = started + duration_s

        async def client(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=bodies[i % len(bodies)]) as resp:
                        await resp.read()
                        if resp.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)
                i += 1

        await asyncio.gather(*(client(c) for c in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3

    return LoadResult("asyncio", concurrency, len(latencies), elapsed, errors,
                      pct(0.50), pct(0.90), pct(0.99))


def run_load(url: str, path: str, bodies: list[bytes], concurrency: int, duration_s: float,
             tool: str = "auto", media: str = JSON) -> LoadResult:
    """One closed-loop point: ``concurrency`` connections, each sending back-to-back
    ``bodies`` of type ``media`` (JSON, or an image type for raw image bodies)."""
    if tool == "wrk" or (tool == "auto" and have_wrk()):
        return run_wrk(url, path, bodies, concurrency, duration_s, media)
    return asyncio.run(_asyncio_load(url + path, bodies, concurrency, duration_s, media))
