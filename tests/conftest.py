"""Shared fixtures: a real ``python -m nn_server`` subprocess to talk to over HTTP(S).

``start_server(*args, env=None, tls=False)`` is the building block (a context manager that
yields a ``LiveServer``); the ``server`` (development mode) and ``prod_server`` (production
mode, two workers) fixtures are session-scoped instances of it. The server picks a free port
(``127.0.0.1:0``) and prints the address it bound, which is where ``.url`` comes from.

Every server gets its own temporary state directory, seeded with small test weights for
LeNet (trained once per session, ~5 s, so tests never depend on the shipped ones; other
networks start from their shipped weights), and trains quickly (1 epoch on 2,000 images)
when asked to, so nothing depends on files outside the test run.
``localaddr`` resolves to 127.0.0.1 (``NN_LOCALADDR``): test servers never face the network.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nn_server.networks import datasets, load_registry

REGISTRY = load_registry()

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "nn_server" / "networks" / "weights" / "lenet.params"


def ensure_data() -> Path:
    """The data directory for the whole run, with every registered network's data set
    present and verified.

    ``$NN_DATA_DIR`` when set (CI points it at ../shared, which holds mnist/ and
    fashion-mnist/); otherwise the per-user cache, where the standard files are downloaded
    on first use, as they would be for a real user. Exported so that servers and trainers
    started by the tests read the same copy.
    """
    directory = datasets.data_dir()
    for cls in REGISTRY.values():
        for split in datasets.SPLITS:
            datasets.load_split(cls.dataset, split, directory)
    os.environ[datasets.DATA_DIR_ENV] = str(directory)
    return directory


DATA_DIR = ensure_data()
LISTED = [f"{cls.title} url:/{cls.name}" for cls in REGISTRY.values()]
"""``/list_nn``'s original text: a line per registered network, LeNet first."""
USER, PASSWORD = "test_nn", "lenet"
AUTH_HEADER = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SERVING_LINE = re.compile(r"Serving on (https?://\S+)")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# Quick training for the server under test: seconds, not minutes.
QUICK_TRAINING = {
    "NN_TRAIN_EPOCHS": "1",
    "NN_TRAIN_SUBSET": "2000",
    "NN_TEST_SUBSET": "1000",
}


@dataclass
class LiveServer:
    """A running server process and what a test needs to reach it."""

    url: str
    process: subprocess.Popen[str]
    state_dir: Path
    cafile: Path | None
    auth: tuple[str, str] = (USER, PASSWORD)
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=2000))

    def output(self) -> str:
        """The server's recent stdout and stderr, for assertions and failure messages."""
        return "".join(self.lines)

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context that trusts exactly this server's certificate (None for HTTP)."""
        if self.cafile is None:
            return None
        return ssl.create_default_context(cafile=str(self.cafile))


@functools.cache
def seed_weights() -> Path:
    """LeNet weights to seed every test server's state directory with (NN_SEED_WEIGHTS is
    the file; the other networks start from their shipped weights).

    Deliberately a different configuration (seed, subset) from the server's own quick
    training, so a retrained network always gets a different weights version.
    """
    out = Path(tempfile.mkdtemp(prefix="nn-test-weights-"))
    atexit.register(shutil.rmtree, out, True)
    subprocess.run(
        [sys.executable, "-m", "nn_server.training", "train", "--data-dir", str(DATA_DIR),
         "--out", str(out), "--epochs", "1", "--train-subset", "1500", "--test-subset", "500",
         "--seed", "7", "--no-download"],
        check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return out / "lenet.params"


def _pump(stream: object, lines: deque[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _get(
    url: str, context: ssl.SSLContext | None, auth: str, timeout: float = 2.0
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": auth})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextlib.contextmanager
def start_server(
    *args: str, env: dict[str, str] | None = None, tls: bool = False,
    cafile: Path | None = None, auth: tuple[str, str] = (USER, PASSWORD),
    ready_when: str | None = None,
) -> Iterator[LiveServer]:
    """Run ``python -m nn_server *args`` until the block ends; yield once ``/ready`` says so.

    ``args`` are the server's own command-line arguments (default ``-d 127.0.0.1:0``);
    ``tls=True`` adds ``-s`` with a certificate minted in a temporary directory; ``env``
    overrides environment variables (``NN_*``), on top of quick-training defaults;
    ``cafile`` is what clients trust for HTTPS (default: the generated certificate);
    ``auth`` is a user the server knows (set ``NN_USERS`` in ``env`` to change users);
    ``ready_when`` names the one network to wait for, when the others are not meant to be
    ready (default: ``/ready`` says every network is).
    """
    argv = list(args) or ["-d", "127.0.0.1:0"]
    if tls and "-s" not in argv:
        argv.insert(0, "-s")
    tmp = Path(tempfile.mkdtemp(prefix="nn-test-server-"))
    state_dir = tmp / "state"
    ssl_dir = tmp / "ssl"
    process = launch(argv, tmp, env)
    lines: deque[str] = deque(maxlen=2000)
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    try:
        url = _wait_for_address(process, lines)
        trusted = (cafile or ssl_dir / "cert.pem") if url.startswith("https:") else None
        server = LiveServer(url, process, state_dir, trusted, auth, lines=lines)
        _wait_until_ready(server, ready_when)
        yield server
    finally:
        _stop(process, state_dir)
        shutil.rmtree(tmp, ignore_errors=True)


def launch(argv: list[str], tmp: Path, env: dict[str, str] | None = None,
           ) -> subprocess.Popen[str]:
    """``python -m nn_server *argv`` in its own session, its state and certificates under
    ``tmp``, output on a pipe."""
    full_env = {
        **os.environ,
        "NN_DATA_DIR": str(DATA_DIR),
        "NN_STATE_DIR": str(tmp / "state"),
        "NN_SSL_DIR": str(tmp / "ssl"),
        "NN_SEED_WEIGHTS": str(seed_weights()),
        "PYTHONUNBUFFERED": "1",
        # Tests serve on loopback only, so `localaddr` must not find the machine's LAN.
        "NN_LOCALADDR": "127.0.0.1",
        **QUICK_TRAINING,
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "nn_server", *argv],
        cwd=ROOT, env=full_env, text=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _wait_for_address(process: subprocess.Popen[str], lines: deque[str]) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in list(lines):
            if match := SERVING_LINE.search(line):
                return match.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("server did not print its address:\n" + "".join(lines))


def _wait_until_ready(server: LiveServer, network: str | None = None) -> None:
    context = server.ssl_context()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        with contextlib.suppress(OSError, ValueError, KeyError):
            status, body = _get(server.url + "/ready", context, basic_auth(*server.auth))
            ready = json.loads(body)
            if network is None and status == 200 and ready["ready"]:
                return
            if network is not None and ready["networks"][network]["ready"]:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not become ready:\n" + server.output())


def _stop(process: subprocess.Popen[str], state_dir: Path) -> None:
    """SIGTERM the server (it stops its workers and any trainer), SIGKILL what lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # A trainer runs in its own session; make sure none outlives its test.
    for status in state_dir.glob("*/status.json"):
        with contextlib.suppress(OSError, ValueError, ProcessLookupError, TypeError):
            pid = int(json.loads(status.read_text()).get("pid") or 0)
            if pid > 0 and json.loads(status.read_text()).get("state") == "training":
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    """The server in development mode (``-d``, one process) on 127.0.0.1, a free port."""
    with start_server("-d", "127.0.0.1:0") as live:
        yield live


@pytest.fixture(scope="session")
def shipped_server() -> Iterator[LiveServer]:
    """Development mode with the weights shipped in the package (the others start from
    quick test weights, too weak to read every sample image); never retrained."""
    with start_server("-d", "127.0.0.1:0", env={"NN_SEED_WEIGHTS": str(SHIPPED)}) as live:
        yield live


@pytest.fixture(scope="session")
def lifecycle_server() -> Iterator[LiveServer]:
    """Development mode, LeNet on its shipped weights, and trained by the SDK and CLI
    lifecycle tests: a quick training is always worse, so it is kept but not served."""
    with start_server("-d", "127.0.0.1:0", env={"NN_SEED_WEIGHTS": str(SHIPPED)}) as live:
        yield live


@pytest.fixture(scope="session")
def prod_server() -> Iterator[LiveServer]:
    """The server in production mode (two worker processes) on 127.0.0.1, a free port."""
    with start_server("127.0.0.1:0", "--workers", "2") as live:
        yield live
