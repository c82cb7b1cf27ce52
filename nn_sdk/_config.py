"""Client settings: where the server is, how long to wait, which certificates to trust."""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from typing import TypeAlias

from yarl import URL

from nn_sdk._address import parse_address
from nn_sdk._exceptions import AddressError, InvalidArgument

DEFAULT_PORT = 5000
DEFAULT_USER = "test_nn"
DEFAULT_PASSWORD = "lenet"
DEFAULT_NETWORK = "lenet"

# Connecting a UDP socket sends no packet; it only asks the kernel which source address it
# would use to reach a public address (192.0.2.1: TEST-NET-1, reserved for documentation).
# The server's ``localaddr`` is this same function, so both sides agree.
_PROBE_ADDRESS = ("192.0.2.1", 9)

VerifyTypes: TypeAlias = "bool | str | os.PathLike[str] | ssl.SSLContext"
"""``True``: the system's CAs; a path: trust that CA/certificate file; ``False``: no checks;
or a ready ``ssl.SSLContext``."""


@dataclass(frozen=True)
class Timeout:
    """How long a request may take, in seconds; ``None`` means no limit.

    ``connect`` bounds establishing the connection (TLS handshake included), ``total``
    the whole request from sending to the last byte of the answer.
    """

    total: float | None = 30.0
    connect: float | None = 10.0

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout:
        """A ``Timeout`` from a ``Timeout``, a number of seconds (total) or ``None``."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(total=None, connect=None)
        seconds = float(value)
        return cls(total=seconds, connect=min(seconds, DEFAULT_TIMEOUT.connect or seconds))


DEFAULT_TIMEOUT = Timeout()


def local_address() -> str:
    """This machine's address on the local network, or ``127.0.0.1`` when it has none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_PROBE_ADDRESS)
            ip = ipaddress.ip_address(probe.getsockname()[0])
    except (OSError, ValueError):
        return "127.0.0.1"
    return "127.0.0.1" if ip.is_loopback or ip.is_unspecified else str(ip)


def default_host() -> str:
    """The host a client talks to by default: this machine's LAN address.

    ``NN_LOCALADDR``, when set, names that address instead, as it does for the server's
    ``localaddr`` (machines on several networks).
    """
    return os.environ.get("NN_LOCALADDR") or local_address()


def default_base_url() -> str:
    """The seed's default server: this machine's LAN address, port 5000, plain http."""
    return f"http://{default_host()}:{DEFAULT_PORT}"


def parse_base_url(base_url: str | URL | None) -> URL:
    """An absolute http(s) URL from ``base_url``; a bare ``host:port`` (see
    ``parse_address``) means http.

    Raises ``ValueError`` when it is not one.
    """
    if base_url is None:
        base_url = default_base_url()
    text = str(base_url).strip()
    if "://" not in text:
        try:
            text = parse_address(text, schemes=()).url("http")
        except AddressError as exc:
            raise InvalidArgument(f"not a server address: {base_url!s}") from exc
    try:
        url = URL(text)
        url.port  # noqa: B018 - yarl validates the port lazily
    except ValueError as exc:
        raise InvalidArgument(f"not a server address: {base_url!s}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidArgument(f"not an http(s) server address: {base_url!s}")
    return url.with_path(url.path.rstrip("/")).with_query(None).with_fragment(None)


def ssl_setting(verify: VerifyTypes) -> ssl.SSLContext | bool:
    """What aiohttp's ``ssl=`` wants for ``verify`` (see ``VerifyTypes``)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True:
        return True
    if verify is False:
        return False
    path = os.fspath(verify)
    if not os.path.isfile(path):
        raise InvalidArgument(f"certificate file not found: {path}")
    return ssl.create_default_context(cafile=path)
