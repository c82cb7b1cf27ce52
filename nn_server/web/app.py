"""``create_app(config)``: the Sanic application — blueprints, listeners, middleware, errors.

Nothing is created at import time. Each worker process calls ``create_app`` (through
Sanic's ``AppLoader``) and gets its own ``app.ctx``: the served networks (``models``),
the trainer ``supervisor``, the ``authenticator`` and its password ``auth_gate``, and the
``hosts`` it answers to, and the ``networks`` it serves (its registry). What workers must
agree on lives in the store (``nn_server.store``), not in memory. The connection-level
defences (deadlines, the connection cap, strict parsing) are in
``nn_server.web.connections``, the protocol ``python -m nn_server`` serves with.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from typing import Any

import sanic.headers
from sanic import Request, Sanic
from sanic.helpers import STATUS_CODES
from sanic.response import BaseHTTPResponse

from nn_server.core.config import Config
from nn_server.engine.serving import Models
from nn_server.networks import load_registry
from nn_server.training.supervisor import Supervisor
from nn_server.web import APP_NAME
from nn_server.web.auth import ADMIN, Authenticator, decode_basic
from nn_server.web.body import check_length
from nn_server.web.clients import Clients
from nn_server.web.errors import (
    AuthRequired,
    Forbidden,
    InvalidRequest,
    JsonErrorHandler,
    MisdirectedRequest,
    NotAcceptable,
)
from nn_server.web.gate import AuthGate
from nn_server.web.hosts import HostError, HostPolicy, other_site
from nn_server.web.metrics import WorkerMetrics
from nn_server.web.routes import (
    docs_blueprint,
    health_blueprint,
    inference_blueprint,
    metrics_blueprint,
    networks_blueprint,
    samples_blueprint,
    versions_blueprint,
    web_blueprint,
)
from nn_server.web.routes.health import PUBLIC_PATHS
from nn_server.web.routes.verbs import NETWORK
from nn_server.web.workers import watch_parent

App = Sanic[Any, Any]

JSON = "application/json"
WORKER_HEADER = "X-NN-Worker"
log = logging.getLogger("nn_server")


def create_app(config: Config) -> App:
    name_misdirected_request()
    app = Sanic(APP_NAME, error_handler=JsonErrorHandler())
    # Sanic's own last-resort rendering (errors before our handler runs) must be JSON too.
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.REQUEST_MAX_SIZE = config.max_body
    # With nn_server.web.connections.Connection, the head's deadline from its first byte (Sanic
    # alone restarts it with every byte) and the grace before the body rate counts.
    app.config.REQUEST_TIMEOUT = config.head_timeout_s  # type: ignore[assignment]  # a float
    app.config.KEEP_ALIVE_TIMEOUT = config.keep_alive_s  # type: ignore[assignment]  # works
    app.ctx.config = config
    app.ctx.hosts = HostPolicy(config.allowed_hosts)
    app.ctx.clients = Clients(tuple(ipaddress.ip_network(n) for n in config.trusted_proxies))
    app.ctx.admit = admit  # for nn_server.web.connections, before it answers "100 Continue"
    app.ctx.networks = networks = load_registry(config.extra_networks)
    app.blueprint(health_blueprint(networks))
    app.blueprint(networks_blueprint(config, networks))
    app.blueprint(versions_blueprint(config, networks))
    app.blueprint(metrics_blueprint())
    app.blueprint(inference_blueprint(config, networks))
    app.blueprint(samples_blueprint(networks))
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
            app.ctx.networks, config.location, config.max_batch, config.max_delay_ms,
            config.batching,
            on_batch=app.ctx.metrics.observe_batch, runtime=config.runtime,
            precision=config.precision,
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
        if config.state_url is not None:  # a cluster: hear each swap at once
            app.ctx.tasks.append(asyncio.create_task(app.ctx.models.listen()))
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

    # Request middleware runs in registration order: refuse what is not meant for us, then
    # what we will not read, then who you are (and may you), then what you accept.
    app.on_request(start_clock)
    app.on_request(check_host)
    app.on_request(limit_body)
    app.on_request(authenticate)
    app.on_request(check_accept)
    app.middleware(name_worker, "response")
    app.middleware(count_request, "response")
    return app


def name_misdirected_request() -> None:
    """Sanic's reason phrases lack RFC 9110's 421, and it formats its status lines once, at
    import: without this, 421 goes out as "421 UNKNOWN" (harmless, clients ignore the
    phrase, but misleading in curl -v)."""
    STATUS_CODES.setdefault(421, b"Misdirected Request")
    lines = getattr(sanic.headers, "_HTTP1_STATUSLINES", None)
    if isinstance(lines, list) and len(lines) > 421:
        lines[421] = b"HTTP/1.1 421 Misdirected Request\r\n"


async def start_clock(request: Request) -> None:
    request.ctx.started = time.perf_counter()


async def count_request(request: Request, response: BaseHTTPResponse) -> None:
    started = getattr(request.ctx, "started", None)
    if started is not None:
        request.app.ctx.metrics.observe_request(
            route_label(request), request.method, response.status,
            time.perf_counter() - started,
        )


def route_label(request: Request) -> str:
    """The route a request took, for the metrics: ``/lenet/classify`` for a known network
    (one series per network, as dashboards expect), the template for any other name (so a
    scan of made-up names cannot grow the series without bound)."""
    template = request.uri_template or "unmatched"
    network = request.match_info.get("network")
    if isinstance(network, str) and network in request.app.ctx.networks:
        return template.replace(NETWORK, network, 1)
    return template


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


async def admit(request: Request) -> None:
    """What a request must pass before the server invites its body (``Expect:
    100-continue``): the checks of the request middleware that do not need the body."""
    check_host(request)
    check_length(request, request.app.ctx.config.max_body)
    await authenticate(request)


def check_host(request: Request) -> None:
    """421 (400 when malformed) unless the Host names this server: a page that rebinds its
    own name to our address sends its name. 403 for a browser's request from another site
    to a route that changes state. Synchronous: no coroutine per request."""
    try:
        host = request.app.ctx.hosts.host_of(request.headers.getall("host", []),
                                             request.version)
    except HostError as exc:
        error = MisdirectedRequest if exc.status == 421 else InvalidRequest
        raise error(str(exc)) from None
    route = request.route
    if route is not None and getattr(route.ctx, "changes_state", False):
        reason = other_site(request.headers, host)
        if reason is not None:
            raise Forbidden("this route changes what the server does and refuses requests "
                            f"a browser sends from another site ({reason})")


async def authenticate(request: Request) -> None:
    """HTTP Basic auth on every route but the public ones (401 with WWW-Authenticate
    otherwise), and the admin role for the routes that change state (403)."""
    if request.path in PUBLIC_PATHS:
        return
    header = request.headers.get("authorization")
    if not header:
        raise AuthRequired("authentication required: use HTTP Basic auth")
    authenticator: Authenticator = request.app.ctx.authenticator
    user = authenticator.cached(header)
    if user is None:
        if decode_basic(header) is None:  # costs no hash, and is no guess
            raise AuthRequired("the Authorization header is not HTTP Basic credentials "
                               "(Basic, then base64 of user:password)")
        client = request.app.ctx.clients.client_of(request.ip,
                                                    request.headers.get("x-forwarded-for"))
        user = await request.app.ctx.auth_gate.verify(authenticator, header, client)
        if user is None:
            raise AuthRequired("wrong user name or password")
    route = request.route
    if route is not None and getattr(route.ctx, "changes_state", False) \
            and authenticator.role_of(user) != ADMIN:
        raise Forbidden(f"{request.method} {request.path} needs the admin role; user "
                        f"{user!r} has the role {authenticator.role_of(user)!r}")
