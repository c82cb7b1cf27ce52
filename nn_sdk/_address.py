"""Server addresses as people type them: ``host:port``, ``[v6]:port``, ``http(s)://host:port``.

One parser for the three places that read one: the SDK (a bare ``NNClient("host:port")``),
the terminal client (its first word) and the server's own command line
(``python -m nn_server 127.0.0.1:0``), so they accept the same forms and say the same
thing about a wrong one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass

from nn_sdk._exceptions import AddressError

SCHEMES = ("http", "https")
_EXAMPLE = "127.0.0.1:5000"


@dataclass(frozen=True)
class Address:
    """A parsed address. ``port`` 0 means "any free port" to a server (a client cannot
    connect to it); ``scheme`` is ``None`` when the text named none."""

    host: str
    """A host name or IP address; an IPv6 address without its brackets."""
    port: int
    scheme: str | None = None

    @property
    def netloc(self) -> str:
        """``host:port``, with an IPv6 address in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self, scheme: str = "http") -> str:
        """``scheme://host:port``; a scheme the text named wins over ``scheme``."""
        return f"{self.scheme or scheme}://{self.netloc}"


def parse_address(text: str, *, schemes: Collection[str] = SCHEMES) -> Address:
    """``host:port``, ``[v6]:port`` or ``scheme://host:port`` (a URL's trailing ``/``
    allowed) → ``Address``; raises ``AddressError``.

    The port is required and may be 0 to 65535. Only the ``schemes`` given are accepted;
    ``schemes=()`` accepts none (the server's command line binds an address, it takes no
    URL). IPv6 addresses go in brackets; without them the last colon starts the port.
    """
    scheme: str | None = None
    rest = text
    if schemes:
        head, sep, tail = text.partition("://")
        if sep:
            if head.lower() not in schemes:
                raise AddressError(f"address {text!r} is not host:port (e.g. {_EXAMPLE})",
                                   part="address", value=text)
            scheme, rest = head.lower(), tail.removesuffix("/")
    host, sep, port_text = rest.rpartition(":")
    if not sep or not host:
        raise AddressError(f"address {text!r} is not host:port (e.g. {_EXAMPLE})",
                           part="address", value=text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise AddressError(f"port {port_text!r} is not a number from 0 to 65535",
                           part="port", value=port_text)
    if not valid_host(host):
        raise AddressError(f"host {host!r} is not an IP address or host name",
                           part="host", value=host)
    return Address(host, int(port_text), scheme)


def valid_host(host: str) -> bool:
    """An IP address, or a host name: dot-separated labels of letters, digits, hyphens
    and underscores (which DNS itself forbids, but container networks and /etc/hosts use:
    ``nn_server:5000``)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.rstrip(".").split(".")
        return all(
            label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
            and not label.startswith("-") for label in labels
        )
