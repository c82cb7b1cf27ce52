"""Keeping the production server's worker processes whole, with Sanic's worker manager.

Sanic's manager starts the workers and can restart one by name, but it does not notice
that a worker died: a worker killed by a signal, the OOM killer or a segfault, or one that
fails at start-up, would leave the server short of capacity for good. ``Watchdog`` is a
thread in the main process that looks at the manager's processes a few times a second and
asks the manager itself to restart a dead worker (the same message a worker's
``app.m.restart()`` sends), at once the first time and with a growing back-off for a
worker that keeps dying right after it started. The manager's shared worker state counts
the starts, which ``/ready`` and ``/metrics`` report.

The other way round, every worker watches its parent (``watch_parent``): when the main
process is gone — killed with SIGKILL, say — the worker stops Sanic's manager process
(a ``multiprocessing`` server that would otherwise live on) and exits, so no orphan keeps
the listening socket and a new server can bind the port at once.

Neither has a public API in Sanic; what is used is listed in ``nn_server.web.sanic_internals``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import connection, managers
from typing import Any

from sanic.log import error_logger as log

WATCH_S = 0.2
"""How often the watchdog looks at the workers."""
QUICK_DEATH_S = 5.0
"""A worker that dies this soon after starting counts as failing to start."""
BACKOFF_S = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Delay before restarting a worker after 0, 1, 2, ... quick deaths in a row."""
PARENT_POLL_S = 0.25
ORPHAN_EXIT_S = 3.0
"""How long an orphaned worker may take to finish its requests before it just exits."""
LIVE_STATES = frozenset({"STARTED", "ACKED", "SERVING", "JOINED"})
STARTUP_WAIT_S = 60.0
"""How long a stop asked for during start-up waits for the workers to finish starting
(Sanic gives up on a worker that has not acknowledged after 30 s)."""
ACK_POLL_S = 0.1
"""How often Sanic's manager looks for the workers' acknowledgements."""


@dataclass
class Watchdog:
    """Restarts dead workers through the manager (main process only)."""

    manager: Any
    """Sanic's ``WorkerManager``."""
    on_death: Callable[[int], None] | None = None
    """Told the pid of each worker found dead (the metrics forget its live gauges)."""
    stop: threading.Event = field(default_factory=threading.Event)
    quick_deaths: dict[str, int] = field(default_factory=dict)
    due: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        threading.Thread(target=self.run, name="nn-watchdog", daemon=True).start()

    def run(self) -> None:
        while not self.stop.wait(WATCH_S):
            try:
                self.check()
            except Exception:  # the watchdog must outlive any surprise
                log.exception("worker watchdog")

    def check(self) -> None:
        now = time.monotonic()
        for process in list(self.manager.transient_processes):
            name = process.name
            if process.state.name in ("TERMINATED", "RESTARTING", "NONE", "IDLE"):
                continue  # stopping on purpose, or already being replaced
            if process.is_alive():
                continue
            if name not in self.due:
                self.due[name] = now + self.backoff(process)
                if self.on_death is not None and process.pid:
                    self.on_death(process.pid)
                log.error("worker %s (pid %s) died (exit code %s); restarting it%s", name,
                          process.pid, process.exitcode, self.delay_text(name, now))
            if now >= self.due[name]:
                del self.due[name]
                # The message a worker sends with app.m.restart(name=...): the manager's own
                # monitor loop restarts the process.
                self.manager.monitor_publisher.send(name)

    def backoff(self, process: Any) -> float:
        state = self.manager.worker_state.get(process.name, {})
        started = state.get("restart_at") or state.get("start_at")
        lived = time.time() - started.timestamp() if started else QUICK_DEATH_S
        quick = self.quick_deaths.get(process.name, 0) + 1 if lived < QUICK_DEATH_S else 0
        self.quick_deaths[process.name] = quick
        return BACKOFF_S[min(quick, len(BACKOFF_S) - 1)]

    def delay_text(self, name: str, now: float) -> str:
        delay = self.due[name] - now
        return f" in {delay:.0f} s (it died right after starting)" if delay > 0 else ""


@dataclass(frozen=True)
class Workers:
    """How many workers the server should have and has, from the manager's shared state."""

    expected: int
    live: int
    restarts: int


def census(worker_state: dict[str, Any], expected: int) -> Workers:
    """Count the live server workers in Sanic's worker state (``app.m.workers``)."""
    live = restarts = 0
    for state in worker_state.values():
        if not state.get("server"):
            continue
        restarts += max(0, int(state.get("starts") or 1) - 1)
        pid = state.get("pid")
        if state.get("state") in LIVE_STATES and isinstance(pid, int) and alive(pid):
            live += 1
    return Workers(expected, live, restarts)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead and not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def defer_shutdown_signals(manager: Any) -> None:
    """In the main process: take SIGINT and SIGTERM to Sanic's manager on a thread of their
    own, once every worker has started. Sanic's handler stops the workers through the
    shared worker state, a ``multiprocessing`` proxy, and a signal handler runs in the main
    thread between two steps of whatever it was doing: when that was a call through the
    same proxy (the manager reads the workers' states ten times a second), the handler's
    call took that call's answer and the main process waited forever for one that had gone.
    And a stop before every worker has acknowledged its start sends the manager's start-up
    loop round and round (it passes on every message but its own). Either hung the server
    on a SIGTERM soon after start, about one time in ten under load."""

    def handle(signum: int, frame: Any) -> None:
        threading.Thread(target=stop_once_started, args=(manager, signum),
                         name="nn-shutdown", daemon=True).start()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    if HELD:
        handle(HELD[0], None)


HELD: list[int] = []
"""Stops asked for before the manager was there to take them."""


def hold_shutdown_signals() -> None:
    """In the main process, until ``defer_shutdown_signals``: remember SIGINT and SIGTERM
    rather than die of them with the workers half started."""

    def hold(signum: int, frame: Any) -> None:
        HELD.append(signum)

    signal.signal(signal.SIGINT, hold)
    signal.signal(signal.SIGTERM, hold)


def stop_once_started(manager: Any, signum: int) -> None:
    deadline = time.monotonic() + STARTUP_WAIT_S
    if not manager._all_workers_ack():
        while not manager._all_workers_ack() and time.monotonic() < deadline:
            time.sleep(WATCH_S / 4)
        time.sleep(ACK_POLL_S * 3)  # for the manager's loop to see the acknowledgements
    manager.shutdown_signal(signum, None)


async def watch_parent(worker_state: Any) -> None:
    """In a worker: when the main process dies, stop the manager's process and exit."""
    # The pid the main process had when it started this worker, not getppid() now: the
    # main process may be gone already (then getppid() names whoever adopted the orphan).
    spawner = multiprocessing.parent_process()
    parent = spawner.pid if spawner is not None and spawner.pid else os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_POLL_S)
    log.error("the server's main process (pid %d) is gone; this worker stops", parent)
    stop_manager_process(worker_state)
    # Finish what is in flight if it is quick (SIGTERM is Sanic's graceful stop), but
    # never linger: an orphan must not keep the port.
    threading.Timer(ORPHAN_EXIT_S, os._exit, (1,)).start()
    os.kill(os.getpid(), signal.SIGTERM)


def stop_manager_process(worker_state: Any) -> None:
    """Ask the ``multiprocessing`` manager that holds Sanic's shared worker state to shut
    down, as its own ``BaseManager.shutdown`` does: it has no other way to learn that the
    main process is gone."""
    token = getattr(worker_state, "_token", None)
    authkey = getattr(worker_state, "_authkey", None)
    if token is None:
        return
    with contextlib.suppress(OSError, EOFError, managers.RemoteError):
        conn = connection.Client(token.address, authkey=authkey)
        try:
            managers.dispatch(conn, None, "shutdown")  # type: ignore[attr-defined]
        finally:
            conn.close()
