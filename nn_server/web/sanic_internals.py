"""Every part of Sanic we rely on that is not its documented API, in one list, each with
why: the HTTP/1.1 machinery ``nn_server.web.connections`` refines (Sanic has no hooks for
deadlines, a connection cap or strict parsing), the worker manager's state that
``nn_server.web.workers`` reads to replace a dead worker and to notice an orphaned one, and
one status-line table (and two attributes of the standard library's ``multiprocessing``
proxies, which Sanic's shared state is). ``tests/web/test_sanic_internals.py`` fails,
naming the entry, when a Sanic upgrade renames or removes any of them; pyproject.toml pins
``sanic>=25.12,<26``.

Where Sanic has a public way, we use it: listeners, middleware, ``app.ctx``, route
``ctx_*`` options, ``ErrorHandler``, ``STATUS_CODES``, ``AppLoader`` and ``Sanic.serve``.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass


@dataclass(frozen=True)
class Internal:
    """One thing we use: ``owner`` (``module:Class`` or a module) and its ``name``."""

    owner: str
    name: str
    used_in: str
    why: str
    kind: str = "attribute"
    """``attribute`` (looked up on the owner), ``instance`` (set in the owner's source as
    ``self.<name>``) or ``override`` (a method of the owner we override: its parameters
    must stay as they are)."""
    parameters: tuple[str, ...] = ()


HTTP = "sanic.http:Http"
PROTOCOL = "sanic.server.protocols.http_protocol:HttpProtocol"
MANAGER = "sanic.worker.manager:WorkerManager"

INTERNALS: tuple[Internal, ...] = (
    # -- the per-request exchange (connections.Exchange) -------------------------------
    Internal(HTTP, "http1_request_header", "connections.Exchange", "strict head parsing "
             "(RFC 9112: no space before a colon, no obs-fold, absolute-form authority)",
             "override", ("self",)),
    Internal(HTTP, "read", "connections.Exchange", "the body rate deadline counts only "
             "time the server waits for the client", "override", ("self",)),
    Internal(HTTP, "http1_response_header", "connections.Exchange", "'100 Continue' only "
             "once the request is admitted", "override", ("self", "data", "end_stream")),
    Internal(HTTP, "error_response", "connections.Exchange", "a refused head gets its "
             "400/408/413 without the request middleware", "override", ("self", "exception")),
    Internal(HTTP, "_safe_int", "connections.Exchange", "Content-Length and chunk sizes in "
             "ASCII digits only (Python's int reads '0x2', ' 2', '+2', '٢')", "override",
             ("value", "base")),
    Internal(HTTP, "log_response", "connections.Exchange", "the access log names the "
             "request by its target, control characters escaped", "override", ("self",)),
    Internal(HTTP, "recv_buffer", "connections.Exchange", "what a refused head said, for "
             "its error message", "instance"),
    Internal(HTTP, "request_body", "connections", "whether a body is still unread", "instance"),
    Internal(HTTP, "stage", "connections", "idle, reading the head, or in the handler",
             "instance"),
    Internal("sanic.http:Stage", "IDLE", "connections", "an idle connection may be replaced "
             "at the cap"),
    # -- the connection (connections.Connection) ---------------------------------------
    Internal(PROTOCOL, "HTTP_CLASS", "connections.Connection", "our Exchange per request"),
    Internal(PROTOCOL, "connection_made", "connections.Connection", "the connection cap",
             "override", ("self", "transport")),
    Internal(PROTOCOL, "connection_lost", "connections.Connection", "the cap's count",
             "override", ("self", "exc")),
    Internal(PROTOCOL, "data_received", "connections.Connection", "the head deadline from "
             "its first byte", "override", ("self", "data")),
    Internal(PROTOCOL, "check_timeouts", "connections.Connection", "head and body "
             "deadlines (Sanic's restarts with every byte)", "override", ("self",)),
    Internal(PROTOCOL, "log_disconnect", "connections.Connection", "a clean line for a "
             "client that left", "override", ("self",)),
    Internal(PROTOCOL, "connections", "connections.Connection", "the open connections, for "
             "the cap", "instance"),
    Internal(PROTOCOL, "recv_buffer", "connections.Connection", "whether a connection is "
             "idle", "instance"),
    Internal(PROTOCOL, "_task", "connections.Connection", "cancel the handler of a request "
             "that timed out", "instance"),
    Internal(PROTOCOL, "_time", "connections.Connection", "which idle connection is "
             "oldest", "instance"),
    Internal(PROTOCOL, "_http", "connections.Connection", "the exchange a disconnect "
             "belongs to", "instance"),
    # -- the worker manager (workers.py, app.py) ---------------------------------------
    Internal(MANAGER, "transient_processes", "workers", "find a worker that died, to "
             "replace it", "instance"),
    Internal(MANAGER, "monitor_publisher", "workers", "ask the manager to restart a worker",
             "instance"),
    Internal(MANAGER, "worker_state", "workers", "which workers have started (the "
             "readiness census)", "instance"),
    Internal(MANAGER, "_all_workers_ack", "workers", "a stop waits for the workers to "
             "have started"),
    Internal("sanic.worker.state:WorkerState", "_state", "app", "a worker watches the "
             "manager's shared state to notice it is orphaned", "instance"),
    Internal("multiprocessing.managers:BaseProxy", "_token", "workers", "an orphaned worker "
             "stops the manager's server process that the shared state lives in", "instance"),
    Internal("multiprocessing.managers:BaseProxy", "_authkey", "workers", "the same, "
             "authenticated", "instance"),
    # -- status lines (app.py) ---------------------------------------------------------
    Internal("sanic.headers", "_HTTP1_STATUSLINES", "app", "Sanic formats status lines "
             "once, at import: 421 needs its reason phrase added there too"),
)


def resolve(owner: str) -> object:
    module_name, _, attribute = owner.partition(":")
    found: object = importlib.import_module(module_name)
    return getattr(found, attribute) if attribute else found


def problem(internal: Internal) -> str | None:
    """What no longer holds for ``internal`` in the installed Sanic, or None."""
    try:
        owner = resolve(internal.owner)
    except (ImportError, AttributeError) as exc:
        return f"{internal.owner} is gone ({exc})"
    where = f"{internal.owner}.{internal.name} (used in {internal.used_in}: {internal.why})"
    if internal.kind == "instance":
        try:
            source = inspect.getsource(owner)  # type: ignore[arg-type]
        except (OSError, TypeError):
            return f"{where}: the source of {internal.owner} cannot be read"
        return None if f"self.{internal.name}" in source else f"{where} is no longer set"
    if not hasattr(owner, internal.name):
        return f"{where} is gone"
    if internal.kind == "override":
        function = inspect.unwrap(getattr(owner, internal.name))
        parameters = tuple(inspect.signature(function).parameters)
        if parameters != internal.parameters:
            return f"{where} now takes {parameters}, not {internal.parameters}"
    return None


def problems() -> list[str]:
    """Every entry that a Sanic upgrade broke."""
    return [p for p in map(problem, INTERNALS) if p is not None]
