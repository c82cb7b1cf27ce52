"""``create_app(config)``: the Sanic application — blueprints, listeners, middleware, errors.

Nothing is created at import time. Each worker process calls ``create_app`` (through
Sanic's ``AppLoader``) and gets its own ``app.ctx``: the served networks (``models``),
the trainer ``supervisor`` and the ``authenticator``. What workers must agree on lives in
the state directory (``nn_server.state``), not in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse, HTTPResponse

from nn_server.auth import Authenticator
from nn_server.body import check_length
from nn_server.config import Config
from nn_server.errors import AuthRequired, JsonErrorHandler, NotAcceptable, TooManyAttempts
from nn_server.metrics import WorkerMetrics
from nn_server.primary import APP_NAME
from nn_server.routes import (
    docs_blueprint,
    health_blueprint,
    inference_blueprint,
    metrics_blueprint,
    networks_blueprint,
    samples_blueprint,
    versions_blueprint,
    web_blueprint,
)
from nn_server.routes.health import PUBLIC_PATHS
from nn_server.serving import Models
from nn_server.training.supervisor import Supervisor
from nn_server.workers import watch_parent

App = Sanic[Any, Any]

JSON = "application/json"
WORKER_HEADER = "X-NN-Worker"
MAX_PENDING_CHECKS = 16
"""Password checks (~50 ms each) a worker queues before answering 429."""
log = logging.getLogger("nn_server")


def create_app(config: Config) -> App:
    app = Sanic(APP_NAME, error_handler=JsonErrorHandler())
    # Sanic's own last-resort rendering (errors before our handler runs) must be JSON too.
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.REQUEST_MAX_SIZE = config.max_body
    app.ctx.config = config
    app.blueprint(health_blueprint())
    app.blueprint(networks_blueprint(config))
    app.blueprint(versions_blueprint(config))
    app.blueprint(metrics_blueprint())
    app.blueprint(inference_blueprint(config))
    app.blueprint(samples_blueprint())
    app.blueprint(web_blueprint())
    app.blueprint(docs_blueprint())

    @app.before_server_start
    async def setup(app: App) -> None:
        # Hashing the default password takes a moment; keep it off the event loop too.
        app.ctx.auth_gate = AuthGate()
        app.ctx.authenticator = await asyncio.get_running_loop().run_in_executor(
            app.ctx.auth_gate.executor, Authenticator.configured, config.users_file,
            config.users,
        )
        app.ctx.metrics = WorkerMetrics()
        app.ctx.models = Models(
            config.state_dir, config.max_batch, config.max_delay_ms, config.batching,
            on_batch=app.ctx.metrics.observe_batch, runtime=config.runtime,
        )
        app.ctx.supervisor = Supervisor(config)

        # Load the weights before this worker accepts a connection: the socket is shared,
        # so until then the other workers answer, and no client ever meets an empty worker.
        try:
            await app.ctx.models.refresh()
        except Exception:  # e.g. unreadable weights: serve 503s until the watcher loads some
            log.exception("could not load weights at start-up; /ready answers 503 until then")

    @app.after_server_start
    async def watch(app: App) -> None:
        app.ctx.tasks = [asyncio.create_task(app.ctx.models.watch(config.reload_interval_s))]
        if hasattr(app, "multiplexer"):  # a production worker: it has a main process
            app.ctx.tasks.append(asyncio.create_task(watch_parent(app.multiplexer.state._state)))


    # After, not before, the server stops: Sanic first finishes the requests in flight
    # (its graceful shutdown), and those still need the batcher and the models.
    @app.after_server_stop
    async def teardown(app: App) -> None:
        for task in app.ctx.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app.ctx.models.close()
        await app.ctx.supervisor.close()
        app.ctx.auth_gate.executor.shutdown(wait=False, cancel_futures=True)

    # Request middleware runs in registration order: refuse what we will not read, then
    # who you are, then what you accept.
    app.on_request(start_clock)
    app.on_request(limit_body)
    app.on_request(authenticate)
    app.on_request(check_accept)
    app.middleware(name_worker, "response")
    app.middleware(count_request, "response")
    return app


@dataclass
class AuthGate:
    """This worker's password checks. Hashing takes tens of milliseconds on purpose, so it
    runs off the event loop, one check at a time, and requests that carry the same header
    share one check (a client's first burst costs one hash, not one per connection). Past
    ``MAX_PENDING_CHECKS`` distinct headers waiting, a flood of guesses gets 429s, costing
    at most one core per worker, while verified clients go on as before."""

    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="nn-auth")
    )
    checks: dict[bytes, asyncio.Future[str | None]] = field(default_factory=dict)

    async def verify(self, authenticator: Authenticator, header: str) -> str | None:
        key = authenticator.fingerprint(header)
        check = self.checks.get(key)
        if check is None:
            if len(self.checks) >= MAX_PENDING_CHECKS:
                raise TooManyAttempts("too many password checks in progress; retry shortly")
            check = asyncio.get_running_loop().run_in_executor(
                self.executor, authenticator.verify, header
            )
            self.checks[key] = check
            check.add_done_callback(lambda _: self.checks.pop(key, None))
        # shield: a client that hangs up must not cancel the check others are waiting on.
        return await asyncio.shield(check)


async def start_clock(request: Request) -> None:
    request.ctx.started = time.perf_counter()


async def count_request(request: Request, response: BaseHTTPResponse) -> None:
    started = getattr(request.ctx, "started", None)
    if started is not None:
        request.app.ctx.metrics.observe_request(
            request.uri_template or "unmatched", request.method, response.status,
            time.perf_counter() - started,
        )


async def name_worker(request: Request, response: BaseHTTPResponse) -> None:
    # Which worker answered: lets clients and tests see every worker switch weights.
    response.headers[WORKER_HEADER] = str(os.getpid())


async def limit_body(request: Request) -> None:
    check_length(request, request.app.ctx.config.max_body)


async def check_accept(request: Request) -> None:
    """406 unless the client accepts what the route answers with: JSON, except where the
    route says otherwise (``ctx_answers``: the metrics' text, an ONNX file, the web page)."""
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return
    route = request.route
    media = getattr(route.ctx, "answers", JSON) if route is not None else JSON
    if media != JSON:  # one format only; errors are still JSON
        return
    if not request.accept.match(JSON):
        raise NotAcceptable(f"answers are application/json; Accept was {accept!r}")


async def authenticate(request: Request) -> HTTPResponse | None:
    """HTTP Basic auth on every route but /health; 401 with WWW-Authenticate otherwise."""
    if request.path in PUBLIC_PATHS:
        return None
    header = request.headers.get("authorization")
    if not header:
        raise AuthRequired("authentication required: use HTTP Basic auth")
    authenticator: Authenticator = request.app.ctx.authenticator
    if authenticator.cached(header) is not None:
        return None
    user = await request.app.ctx.auth_gate.verify(authenticator, header)
    if user is None:
        raise AuthRequired("wrong user name or password")
    return None
