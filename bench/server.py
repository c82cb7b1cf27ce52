"""Starting the real server for a benchmark and reading its processes' CPU time and RSS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BANNER = re.compile(r"Serving on (https?://\S+?:\d+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
AUTH = "Basic dGVzdF9ubjpsZW5ldA=="  # the default test_nn / lenet


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    ready_s: float

    def pids(self) -> list[int]:
        """The server's process tree (the main process and its workers)."""
        tree = [self.process.pid]
        for pid in tree:
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            tree.extend(int(c) for c in children)
        return tree

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / CLOCK_TICKS

    def pss_mb(self) -> float:
        """Proportional set size: shared pages (MXNet's 150 MB library) counted once."""
        total = 0
        for pid in self.pids():
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            total += next(int(line.split()[1]) for line in rollup.splitlines()
                          if line.startswith("Pss:"))
        return total / 1024

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            except OSError:
                continue
        return total / 2**20


@contextmanager
def running_server(workers: int, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """The production server on 127.0.0.1, a free port, a throwaway state dir."""
    with tempfile.TemporaryDirectory(prefix="nn-bench-") as state:
        env = {**os.environ, "NN_STATE_DIR": state, "NN_WORKERS": str(workers),
               "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "nn_server", "127.0.0.1:0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            url = wait_for_banner(process)
            wait_ready(url)
            yield Server(url, process, time.perf_counter() - started)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_banner(process: subprocess.Popen[str], timeout: float = 60.0) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if match := BANNER.search(line):
            # Keep draining the server's output so its pipe never fills and blocks it.
            stdout = process.stdout
            threading.Thread(target=stdout.read, daemon=True).start()
            return match.group(1)
    raise RuntimeError("server did not start:\n" + "".join(seen[-30:]))


def wait_ready(url: str, timeout: float = 60.0) -> None:
    """Poll ``/ready`` until the weights are loaded."""
    request = urllib.request.Request(f"{url}/ready", headers={"Authorization": AUTH})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} never became ready")
