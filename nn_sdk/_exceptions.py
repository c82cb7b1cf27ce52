"""The SDK's exceptions: one tree, so ``except nn_sdk.NNError`` catches everything we raise.

::

    NNError
    ├── InvalidArgument           a call the SDK cannot make: a bad option, a closed
    │   │                         client, an input it cannot send (also ValueError,
    │   │                         TypeError, RuntimeError, as they were)
    │   └── AddressError          not a host:port address (parse_address)
    ├── LocalFileError            a local file cannot be read (an image) or written (a model)
    ├── TransportError            the request did not get a usable answer
    │   ├── ConnectError          cannot connect (refused, unknown host, TLS failure)
    │   ├── TimeoutException      connecting or answering took too long
    │   └── ProtocolError         the answer is not nn-server JSON
    └── APIError                  the server answered with an error status (``.status``)
        ├── BadRequest            400  malformed request or unreadable image
        ├── AuthenticationError   401  wrong user or password
        ├── NotFound              404  no such network or route
        ├── TrainingInProgress    409  already training (503 from a seed-compatible server)
        ├── PayloadTooLarge       413  request body over the server's limit
        ├── UnsupportedMedia      415  not JPEG/PNG/BMP/TIFF (also raised before sending)
        └── ServerError           5xx  the server failed

Other error statuses (405, 406, ...) raise :class:`APIError` itself. Every exception's
``str()`` is the server's ``"error"`` message when there is one, so it can be shown to a
user as it is. aiohttp's exceptions never escape: ``_client.py`` turns them into
``TransportError`` subclasses at one place, chaining the original as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal


class NNError(Exception):
    """Base class of every error the SDK raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(NNError, ValueError, TypeError, RuntimeError):
    """The SDK was asked for something it cannot do — a user name with ``:``, a batch size
    of 0, a file object opened in text mode, a closed client — before anything was sent.
    Also the ``ValueError`` / ``TypeError`` / ``RuntimeError`` it used to be."""


class AddressError(InvalidArgument):
    """Text that is not a server address (``parse_address``); the message says why in one
    line. ``part`` names what is wrong — ``"address"`` (not host:port at all), ``"host"``
    or ``"port"`` — and ``value`` is that part as typed. Also a ``ValueError``, as a bad
    ``NNClient`` address is."""

    def __init__(self, message: str, *, part: Literal["address", "host", "port"],
                 value: str) -> None:
        super().__init__(message)
        self.part = part
        self.value = value


class LocalFileError(NNError, OSError):
    """A local file could not be read (an image to classify) or written (an exported
    model); the message names it and says why. Also an ``OSError``, as it was before."""


class TransportError(NNError):
    """The request could not be completed: no usable answer came back."""


class ConnectError(TransportError):
    """The server could not be reached, or its TLS certificate was not trusted."""


class TimeoutException(TransportError):
    """Connecting, or waiting for the answer, took longer than the client's timeout."""


class ProtocolError(TransportError):
    """Something answered, but not with the JSON an nn-server sends."""


class APIError(NNError):
    """The server answered with an error status.

    ``status`` is the HTTP status (``None`` when the SDK refused locally, before
    sending), ``message`` the server's ``"error"`` text and ``body`` the whole decoded
    JSON answer (empty when there was none).
    """

    def __init__(
        self, message: str, *, status: int | None = None, body: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: Mapping[str, Any] = body if body is not None else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"


class BadRequest(APIError):
    """400: the request was malformed, or the image could not be read."""


class AuthenticationError(APIError):
    """401: the user name or password was not accepted."""


class NotFound(APIError):
    """404: no such network (the message lists the valid ones) or route."""


class TrainingInProgress(APIError):
    """409: the network is already training; 503 from a seed-compatible server, which
    refuses every request to a network while it trains."""


class PayloadTooLarge(APIError):
    """413: the request body is larger than the server accepts (16 MB by default)."""


class UnsupportedMedia(APIError):
    """415: the image is not JPEG, PNG, BMP or TIFF.

    The SDK checks this itself before sending; then ``status`` is ``None``.
    """


class ServerError(APIError):
    """5xx: the server failed, or is not ready yet."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: AuthenticationError,
    404: NotFound,
    409: TrainingInProgress,
    413: PayloadTooLarge,
    415: UnsupportedMedia,
}


def error_for_status(status: int, body: Mapping[str, Any] | None) -> APIError:
    """The exception for an error answer with ``status`` and decoded JSON ``body``."""
    body = body if body is not None else {}
    error = body.get("error")
    message = error if isinstance(error, str) and error else f"HTTP {status}"
    cls = _BY_STATUS.get(status)
    if cls is None:
        if status == 503 and _says_training(body, message):
            cls = TrainingInProgress
        elif status >= 500:
            cls = ServerError
        else:
            cls = APIError
    return cls(message, status=status, body=body)


def _says_training(body: Mapping[str, Any], message: str) -> bool:
    # A seed-compatible server answers 503 while a network trains; "not ready" is a 503 too.
    return body.get("state") == "training" or "train" in message.lower()
