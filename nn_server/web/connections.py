"""The HTTP/1.1 connection: Sanic's, with deadlines, a cap, strict parsing and a clean log.

``python -m nn_server`` serves with ``Connection`` (an ``HttpProtocol``) and its per-request
``Exchange`` (an ``Http``), which change Sanic where it trusts clients too much:

* Deadlines. Sanic's request timeout restarts with every byte, so a client that trickles
  its head never times out. Here the whole head must arrive within ``NN_HEAD_TIMEOUT_S``
  of its first byte, and a body at ``NN_MIN_BODY_RATE`` bytes/s on average once that long
  again has passed (time the server itself is not reading does not count); else 408 and
  the connection closes. Idle connections close after ``NN_KEEP_ALIVE_S``.
* A cap. A worker holds at most ``NN_MAX_CONNECTIONS``; at the cap, a new connection
  replaces the one that has been idle longest or, when none is idle, gets 503 and is closed.
* Strict parsing where Sanic is lenient and RFC 9112 is not: whitespace between a header
  name and its colon, obs-fold continuation lines, Content-Length and chunk sizes that only
  Python's ``int`` reads (``0x2``, `` 2``, ``+2``, ``٢``), and an absolute-form target whose
  authority is not the Host. All get 400 and the connection closes, so nothing after them
  is read as another request.
* Errors as what they are. A request whose head is refused gets its 400/408/413 without
  the request middleware (which would judge headers we could not read: "401, no
  credentials"), and one that never became a request (``GET lenet HTTP/1.1``) gets it too,
  not a traceback and silence.
* ``Expect: 100-continue`` is answered "100 Continue" only once the request is admitted
  (Host, size, credentials: the app's ``admit``), also where Sanic reads a body before the
  request middleware runs. An answer given before the body was invited closes the
  connection instead of inviting, then reading, a body nobody wants.
* The access log names a request by its method and target (not its URL, which is built
  from the client's Host), with control characters escaped.

Sanic has no hooks for any of this, so these classes override parts of its ``Http`` and
``HttpProtocol``; each part is listed, with why, in ``nn_server.web.sanic_internals``.
"""

from __future__ import annotations

import json
import logging
import string
from dataclasses import dataclass
from time import monotonic, perf_counter
from typing import Any

from sanic.exceptions import BadRequest, RequestTimeout
from sanic.http import Http, Stage
from sanic.log import access_logger
from sanic.server.protocols.http_protocol import HttpProtocol

from nn_server.core.addresses import host_name
from nn_server.web.hosts import authority, shown

log = logging.getLogger("nn_server")

DECIMAL = frozenset(string.digits)
HEXADECIMAL = frozenset(string.hexdigits)
MAX_DIGITS = 19
"""Longest Content-Length or chunk size read (either way, far beyond any body limit)."""
LOGGED_TARGET = 200
"""Characters of a request target written to the access log."""
WARN_EVERY_S = 10.0
"""At most one warning this often about connections refused at the cap."""


def overloaded_answer() -> bytes:
    """The whole HTTP answer to a connection over the cap, written before any request."""
    body = json.dumps({"error": "the server has too many open connections; retry shortly",
                       "status": 503}).encode()
    return (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%b"
            % (len(body), body))


OVERLOADED = overloaded_answer()


def loggable(text: str) -> str:
    """``text`` with control characters (and undecodable bytes) as escapes, for one line."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def head_problem(head: bytes) -> str:
    """What is wrong with a request head Sanic could not parse, in words."""
    request_line, *lines = head.split(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not all(parts):
        return "the request line is not METHOD TARGET HTTP/1.1"
    if parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        return f"HTTP version {shown(parts[2].decode('latin-1'))} is not supported"
    framing = 0
    for number, line in enumerate(lines, start=2):
        name, colon, _ = line.partition(b":")
        if not colon:
            return f"line {number} of the request head is not NAME: VALUE"
        framing += name.strip().lower() in (b"content-length", b"transfer-encoding")
    if framing > 1:
        return "a request has one Content-Length or Transfer-Encoding, not several"
    return "the request head is malformed"


def strictness_problem(head: bytes) -> str | None:
    """Forms RFC 9112 forbids (because two parsers may read them differently) that Sanic
    accepts, or None. Two substring tests on the hot path; the rest only when they hit."""
    if b"\r\n " in head or b"\r\n\t" in head:
        return "a header line starts with whitespace (obsolete line folding)"
    if b" :" in head or b"\t:" in head:
        for line in head.split(b"\r\n")[1:]:
            name = line.partition(b":")[0]
            if name != name.rstrip(b" \t"):
                return "a header name is followed by whitespace before its colon"
    return None


@dataclass
class Refusals:
    """Connections this worker refused at the cap, for an occasional warning."""

    count: int = 0
    warned_at: float = -WARN_EVERY_S


class Exchange(Http):
    """One request and answer on a ``Connection`` (see the module's docstring)."""

    __slots__ = ()
    protocol: Connection

    async def http1_request_header(self) -> None:
        connection = self.protocol
        connection.head_started = monotonic()
        try:
            await super().http1_request_header()  # type: ignore[no-untyped-call]
        except BadRequest as exc:
            raise BadRequest(self.parse_problem(str(exc.message))) from None
        url = self.url or ""
        problem = strictness_problem(self.request.head)
        if problem is None and not (url.startswith("/") or url == "*"):
            problem = self.absolute_form_problem(url)
        if problem is not None:
            raise BadRequest(problem)
        connection.body_started = monotonic()
        connection.body_mark = connection.received - len(self.recv_buffer)

    def parse_problem(self, message: str) -> str:
        """Sanic's message for a head it could not parse, in words a client can act on."""
        if message == "Bad Request":  # Sanic's word for every malformed head
            end = self.recv_buffer.find(b"\r\n\r\n")
            return head_problem(bytes(self.recv_buffer[:end]))
        if message.startswith("Bad URL"):
            return (f"the request target {shown(self.url or '')} is not a path "
                    "(such as /list_nn)")
        if message == "Bad content-length":
            return "Content-Length must be a whole number of bytes"
        return message

    def absolute_form_problem(self, url: str) -> str | None:
        """``GET http://host/path``: Host must name the same host (RFC 9112 says the
        target's wins; Sanic and our checks read the Host)."""
        target = host_name(authority(url))
        host = self.request.headers.getone("host", "")
        if target is None or target != host_name(host):
            return (f"the request target {shown(url)} and the Host header "
                    f"{shown(host)} name different hosts")
        return None

    async def read(self) -> bytes | None:
        if self.expecting_continue and not getattr(
                self.request, "_request_middleware_started", False):
            # Sanic reads a non-streaming route's body before the request middleware runs:
            # admit the request (Host, size, credentials) before inviting its body.
            admit = getattr(self.protocol.app.ctx, "admit", None)
            if admit is not None:
                await admit(self.request)
        return await super().read()  # type: ignore[no-any-return]

    async def http1_response_header(self, data: bytes, end_stream: bool) -> None:
        if self.expecting_continue:
            # Answered before the handler asked for the body (an error, or a route that
            # takes none): do not invite the body, and close rather than read it.
            self.expecting_continue = False
            self.keep_alive = False
            self.request_body = None
        await super().http1_response_header(data, end_stream)

    async def error_response(self, exception: Exception) -> None:
        if isinstance(exception, RequestTimeout):
            self.request_body = None  # too slow to wait for: answer, then close unread
        if self.stage is not Stage.REQUEST:
            await super().error_response(exception)
            return
        # The head was unreadable, late or refused: answer that, without the request
        # middleware, and close (nothing after it on the connection can be trusted).
        self.keep_alive = False
        self.stage = Stage.HANDLER
        if self.request is None:
            try:
                self.create_empty_request()
            except BadRequest:  # a target Sanic cannot parse, even to log it
                self.url = None
                self.create_empty_request()
        app = self.protocol.app
        try:
            await app.handle_exception(self.request, exception, False)
        except Exception as exc:
            await app.handle_exception(self.request, exc, False)

    @staticmethod
    def _safe_int(value: str, base: int = 10) -> int:
        # Content-Length is 1*DIGIT, a chunk size 1*HEXDIG (RFC 9112); Python's int also
        # takes signs, "0x", underscores, inner spaces and non-ASCII digits. Trailing
        # blanks are the optional whitespace before a chunk extension or after a value.
        digits = value.rstrip(" \t")
        allowed = HEXADECIMAL if base == 16 else DECIMAL
        if not digits or len(digits) > MAX_DIGITS or not allowed.issuperset(digits):
            raise ValueError(f"not a base-{base} number: {value!r}")
        return int(digits, base)

    def log_response(self) -> None:
        transport = self.protocol.transport
        if transport is None or transport.is_closing():
            return  # the client has gone: log_disconnect writes the one line for it
        response = self.response
        chunked = response.headers.get("transfer-encoding") == "chunked"
        access_logger.info("", extra={
            "status": getattr(response, "status", 0),
            "byte": "chunked" if chunked else response.headers.get("content-length", 0),
            "host": self.protocol.peer(),
            "request": self.request_line(),
            "duration": (f" {1000 * (perf_counter() - self.perft0):.1f}ms"
                         if self.perft0 is not None else ""),
        })

    def request_line(self) -> str:
        """How the access log names this request: method and target, escaped."""
        request = self.request
        if request is None:
            return "nil"
        if request.method == "NONE":  # no request was parsed: show the line we got
            line = bytes(self.recv_buffer[:LOGGED_TARGET])
            return loggable(line.partition(b"\r\n")[0].decode("latin-1"))
        target = request.raw_url[:LOGGED_TARGET].decode("ascii", "backslashreplace")
        return loggable(f"{request.method} {target}")


class Connection(HttpProtocol):
    """One client connection to a worker (see the module's docstring)."""

    HTTP_CLASS = Exchange
    __slots__ = ("body_mark", "body_started", "head_started", "received", "refused")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.head_started = 0.0
        self.body_started = 0.0
        self.body_mark = 0
        self.received = 0
        self.refused = False

    # -- the cap ---------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        cap = self.app.ctx.config.max_connections
        if len(self.connections) >= cap and not self.close_longest_idle():
            self.refused = True
            transport.write(OVERLOADED)
            transport.close()
            self.warn_refused(cap)
            return
        super().connection_made(transport)  # type: ignore[no-untyped-call]

    def close_longest_idle(self) -> bool:
        """Close the connection that has waited longest for a request; False if none."""
        idle = [c for c in self.connections
                if isinstance(c, Connection) and c.transport is not None and c.is_idle()]
        if not idle:
            return False
        min(idle, key=lambda c: c._time).close()
        return True

    def is_idle(self) -> bool:
        http = self.http
        return http is None or (http.stage is Stage.IDLE and not self.recv_buffer
                                and not getattr(http, "request_body", None))

    def warn_refused(self, cap: int) -> None:
        refusals: Refusals | None = getattr(self.app.ctx, "refusals", None)
        if refusals is None:
            refusals = self.app.ctx.refusals = Refusals()
        refusals.count += 1
        now = monotonic()
        if now - refusals.warned_at >= WARN_EVERY_S:
            log.warning("%d connection(s) refused: this worker holds its limit of %d "
                        "(NN_MAX_CONNECTIONS)", refusals.count, cap)
            refusals.count, refusals.warned_at = 0, now

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.refused:
            super().connection_lost(exc)  # type: ignore[no-untyped-call]

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        self.received += len(data)
        super().data_received(data)

    # -- deadlines ---------------------------------------------------------------------------

    def check_timeouts(self) -> None:
        http = self.http
        if self._task and http is not None:
            now = monotonic()
            if http.stage is Stage.REQUEST:
                if now - self.head_started > self.request_timeout:
                    self.time_out(http, "the request head did not arrive within "
                                        f"{self.request_timeout:g} s")
            elif getattr(http, "request_body", None):  # unset before the first request
                if len(self.recv_buffer) >= self.app.config.REQUEST_BUFFER_SIZE:
                    # We are not reading (the handler is busy): the client is not late.
                    self.body_started, self.body_mark = now, self.received
                rate = self.app.ctx.config.min_body_rate
                late = now - self.body_started - self.request_timeout
                if late > 0 and self.received - self.body_mark < late * rate:
                    self.time_out(http, f"the request body arrives slower than {rate} "
                                        "bytes/s")
        # Sanic's own checks, and the next round (which closes a connection that somehow
        # outlived the cancellation).
        super().check_timeouts()  # type: ignore[no-untyped-call]

    def time_out(self, http: Exchange, message: str) -> None:
        log.debug("closing a connection: %s", message)
        http.exception = RequestTimeout(message)
        if self._task is not None:
            self._task.cancel()

    # -- the log ---------------------------------------------------------------------------

    def log_disconnect(self) -> None:
        http = self._http
        response = http.response
        access_logger.info("", extra={
            "status": response.status if response else str(http.stage),
            "byte": "DISCONNECTED",
            "host": self.peer(),
            "request": http.request_line(),
            "duration": "",
        })

    def peer(self) -> str:
        info = self.conn_info
        return f"{info.client}:{info.client_port}" if info is not None else "-"

