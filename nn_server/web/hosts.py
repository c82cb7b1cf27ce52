"""The names this server answers to, and whether a browser's request comes from its own site.

DNS rebinding: a page on ``attacker.example`` can make that name resolve to this server's
address, and the browser then sends the server requests with ``Host: attacker.example``
(and any Basic credentials it has cached for the address). So the server answers only for
the names it is known by: its bound address, ``localhost`` and the loopback addresses, this
machine's names and addresses, and ``NN_ALLOWED_HOSTS`` (``*`` for any, ``.example.com``
for a domain and its subdomains). Any other Host gets 421, a malformed one 400. Ports are
not compared: tunnels and port forwarding change them, and a rebinding attack does not
need to.

Cross-site requests: a page on another site can make a browser send a GET (``<img src>``)
or a form POST here. Browsers say where a request comes from (``Sec-Fetch-Site``, else
``Origin`` or ``Referer``), and the routes that change state refuse those from elsewhere.
Clients that are not browsers (curl, requests, the SDK) send none of these headers.

Pure functions and one small class, no Sanic: the middleware in ``nn_server.web.app`` turns a
``HostError`` into its JSON answer.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from nn_server.core.addresses import ANY, host_name

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
CROSS_SITE = frozenset({"cross-site", "same-site"})
"""``Sec-Fetch-Site`` values of a request from another site (``same-site`` is a sibling
subdomain, which is not necessarily ours)."""
REMEMBERED_HOSTS = 256
"""Host header values remembered as accepted (the fast path); bounded, since a client
chooses them."""


class HostError(ValueError):
    """A Host the server does not answer to (``status`` 421) or cannot read (400)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def shown(value: str, limit: int = 100) -> str:
    """A client's header value, safe to put in a message or a log line."""
    return ascii(value[:limit] + ("..." if len(value) > limit else ""))


def address_name(address: str) -> str:
    """An IP address as a Host header names it (IPv6 in brackets)."""
    ip = ipaddress.ip_address(address)
    return f"[{ip.compressed}]" if ip.version == 6 else ip.compressed


def known_names(bound: str, localaddr: str | None = None) -> list[str]:
    """What clients may call this server: the address it is bound to, this machine's names
    and their addresses, and its address on the local network (``localaddr``)."""
    names = {bound.lower()}
    hostname = socket.gethostname()
    for name in (hostname, socket.getfqdn(hostname)):
        names.add(name.lower())
        with contextlib.suppress(OSError, UnicodeError):
            names.update(str(info[4][0]) for info in socket.getaddrinfo(name, None))
    if localaddr:
        names.add(localaddr)
    found = []
    for name in sorted(names):
        with contextlib.suppress(ValueError):
            name = address_name(name.partition("%")[0])  # an IPv6 zone is not in a Host
        if host_name(name) is not None and name not in found:
            found.append(name)
    return found


class HostPolicy:
    """Which Host headers this worker answers (one per worker, on ``app.ctx``)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        entries = [entry.strip().lower() for entry in allowed if entry.strip()]
        self.any = ANY in entries
        self.suffixes = tuple(e for e in entries if e.startswith(".") and len(e) > 1)
        names = {host_name(e) for e in entries if e != ANY and not e.startswith(".")}
        self.names = frozenset(n for n in names if n is not None) | set(LOOPBACK_NAMES)
        self.accepted: set[str] = set(self.names)

    def host_of(self, values: list[str], version: str) -> str:
        """The request's Host header if the server answers to it (``values``: every Host
        header it sent); else ``HostError``. ``""`` for an HTTP/1.0 request without one."""
        if len(values) == 1 and values[0] in self.accepted:  # the hot path: a set lookup
            return values[0]
        if not values:
            if version == "1.0":
                return ""
            raise HostError("an HTTP/1.1 request needs a Host header", 400)
        if len(values) > 1:
            raise HostError("a request has one Host header, not several", 400)
        host = values[0]
        name = host_name(host)
        if name is None:
            raise HostError(f"the Host header {shown(host)} is not a host name or address",
                            400)
        if not self.allows(name):
            raise HostError(
                f"this server does not answer to the name {shown(name)}; if it should, add "
                "it to NN_ALLOWED_HOSTS", 421)
        if len(self.accepted) < REMEMBERED_HOSTS:
            self.accepted.add(host)
        return host

    def allows(self, name: str) -> bool:
        return (self.any or name in self.names
                or any(name.endswith(s) or name == s[1:] for s in self.suffixes))


def other_site(headers: Mapping[str, str], host: str) -> str | None:
    """Why a browser request comes from another site than ``host`` (the request's Host),
    or None when it does not (or is not from a browser)."""
    site = headers.get("sec-fetch-site")
    if site is not None:  # sent by every current browser, and only they can send it
        site = site.strip().lower()
        return f"Sec-Fetch-Site: {site}" if site in CROSS_SITE else None
    for name in ("origin", "referer"):
        value = headers.get(name)
        if value is not None and authority(value) != host.strip().lower():
            return f"{name.title()}: {shown(value)}"
    return None


def authority(url: str) -> str:
    """``host[:port]`` of an absolute URL in lower case; "" for ``null`` or a relative one."""
    try:
        return urlsplit(url.strip()).netloc.lower()
    except ValueError:
        return ""
