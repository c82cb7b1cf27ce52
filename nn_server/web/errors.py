"""Every error the server answers with, and the one handler that renders them all as JSON.

The HTTP layer's own errors:

    SanicException (Sanic's own: BadRequest 400, NotFound 404, MethodNotAllowed 405,
    │               RequestTimeout 408, PayloadTooLarge 413, ...)
    └── ApiError                     raised by the web layer; subclasses fix status_code
        ├── InvalidRequest       400  bad JSON, missing/non-string "image", bad base64,
        │                             a malformed Host
        ├── AuthRequired         401  with WWW-Authenticate
        ├── Forbidden            403  the wrong role, or a browser on another site
        ├── NotFound             404  no such file or sample (Sanic's own: no such route)
        ├── NotAcceptable        406  Accept excludes application/json
        ├── Conflict             409  a parameter that contradicts the network
        ├── BodyTooLarge         413  over NN_MAX_BODY
        ├── UnsupportedMediaType 415  body not JSON
        ├── MisdirectedRequest   421  a Host this server does not answer to
        ├── TooManyAttempts      429  password checks queued beyond the limit
        └── Unavailable          503  not ready; "network is training" in seed-compatible mode

The domain's errors (``nn_server.core.errors``: an unreadable image, an unknown network or
version, a training already running, no weights loaded yet, a store out of reach) are
answered by their kind, in ``DOMAIN_STATUSES``: the one place that maps them to HTTP. A
client that hangs up (``RequestCancelled``) is no error of ours: 499, as nginx logs it, and
no traceback. Anything else is a bug: 500, logged with its traceback, and the client sees
only a generic message. The body is always ``{"error": "<message>", "status": <code>}``.
"""

from __future__ import annotations

from typing import Any

from sanic import Request
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler
from sanic.log import error_logger
from sanic.response import HTTPResponse, json

from nn_server.core import errors as domain

REALM = "nn-server"
INTERNAL_ERROR = "internal server error; the server log has the details"
CLIENT_CLOSED = 499
"""nginx's status for a request whose client hung up before the answer (never sent)."""


class ApiError(SanicException):
    """Base of the server's own errors; raise a subclass with a message for the user."""

    status_code = 500
    quiet = True


class InvalidRequest(ApiError):
    status_code = 400


class AuthRequired(ApiError):
    status_code = 401
    headers = {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'}  # noqa: RUF012


class Forbidden(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class NotAcceptable(ApiError):
    status_code = 406


class Conflict(ApiError):
    status_code = 409


class BodyTooLarge(ApiError):
    status_code = 413


class UnsupportedMediaType(ApiError):
    status_code = 415


class MisdirectedRequest(ApiError):
    status_code = 421


class TooManyAttempts(ApiError):
    status_code = 429
    headers = {"Retry-After": "1"}  # noqa: RUF012


class Unavailable(ApiError):
    status_code = 503


DOMAIN_STATUSES: tuple[tuple[type[domain.DomainError], int], ...] = (
    (domain.Unsupported, 415),
    (domain.Invalid, 400),
    (domain.Missing, 404),
    (domain.Conflict, 409),
    (domain.Unavailable, 503),
)
"""The domain's kinds of error and the status each is answered with."""


def status_of(exception: BaseException) -> int:
    if isinstance(exception, SanicException):
        return int(exception.status_code)
    if isinstance(exception, RequestCancelled):
        return CLIENT_CLOSED
    if isinstance(exception, domain.DomainError):
        # The most specific kind first: Unsupported is also Invalid.
        return next((status for kind, status in DOMAIN_STATUSES if isinstance(exception, kind)),
                    500)
    return 500


def is_ours(exception: BaseException) -> bool:
    """Whether ``exception`` is one the server raises on purpose, with a message for the
    user (else it is a bug: its text stays in the log)."""
    return isinstance(exception, ApiError | domain.DomainError)


def error_body(exception: BaseException, status: int) -> dict[str, Any]:
    """The JSON body for ``exception``; the batch form of classify reuses it per image."""
    if status >= 500 and not is_ours(exception):
        return {"error": INTERNAL_ERROR, "status": status}
    if status == CLIENT_CLOSED:
        return {"error": "the client closed the connection", "status": status}
    message = getattr(exception, "message", None) or str(exception) or "error"
    return {"error": str(message), "status": status}


class JsonErrorHandler(ErrorHandler):
    """Sanic's error handler with exactly one rendering: JSON, never HTML or a traceback."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        status = status_of(exception)
        if status >= 500 and not is_ours(exception):
            error_logger.exception(
                "unexpected error in %s %s", request.method, request.path, exc_info=exception
            )
        headers = dict(getattr(exception, "headers", None) or {})
        return json(error_body(exception, status), status=status, headers=headers)
