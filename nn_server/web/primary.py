"""The production server's main process: the Sanic app that only manages the workers.

Workers build the full application (``nn_server.web.app.create_app``) themselves; the main
process needs none of it — no routes, no networks, no NumPy, OpenCV or ONNX Runtime — so
its own app is this skeleton, which keeps it small (it is one of the processes whose memory
a server costs) and starts the watchdog that replaces dead workers.
"""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from nn_server.core.config import Config
from nn_server.web import APP_NAME
from nn_server.web.workers import Watchdog, defer_shutdown_signals


def create_primary(config: Config) -> Sanic[Any, Any]:
    app: Sanic[Any, Any] = Sanic(APP_NAME)
    app.ctx.config = config

    @app.main_process_ready
    async def watch_workers(app: Sanic[Any, Any]) -> None:
        defer_shutdown_signals(app.manager)
        app.ctx.watchdog = Watchdog(app.manager, on_death=forget)
        app.ctx.watchdog.start()

    @app.main_process_stop
    async def unwatch_workers(app: Sanic[Any, Any]) -> None:
        app.ctx.watchdog.stop.set()

    return app


def create_worker_app(config: Config) -> Sanic[Any, Any]:
    """The factory each worker process calls (through Sanic's AppLoader): the whole app.
    Imported here, in the worker, rather than by the main process."""
    from nn_server.web.app import create_app

    return create_app(config)


def forget(pid: int) -> None:
    """A worker died: its live metrics go (prometheus-client loads only now)."""
    from nn_server.web.metrics import forget as forget_metrics

    forget_metrics(pid)
