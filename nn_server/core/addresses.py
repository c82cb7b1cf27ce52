"""Host names, addresses and networks as the server reads them: in Host headers, in its own
command line (``127.0.0.1:0``, ``[::1]:5000``, ``localaddr:5000``) and in its configuration
(``NN_ALLOWED_HOSTS``, ``NN_TRUSTED_PROXIES``). Pure functions on strings, but for
``local_address``, which asks the kernel which address the default route leaves from."""

from __future__ import annotations

import ipaddress
import socket
import string

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ANY = "*"
"""In ``NN_ALLOWED_HOSTS``: answer to any host name."""
NAME_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + ".-_")
"""What a host name may hold: DNS's letters, digits, dots and hyphens, and the underscores
that container networks and /etc/hosts use (``nn_server:5000``)."""
EXAMPLE = "127.0.0.1:5000"
PROBE = ("192.0.2.1", 9)
"""TEST-NET-1: a UDP "connection" to it sends nothing and tells which address routes out."""


def host_name(value: str) -> str | None:
    """The host in a Host header or an authority (``name``, ``name:port``, ``[v6]:port``):
    lower case, no port, no trailing dot, IPv6 as ``[compressed]``; None if it is none."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        try:
            name = f"[{ipaddress.IPv6Address(value[1:end]).compressed}]" if end > 0 else ""
        except ValueError:
            return None
        port = value[end + 1:]
    else:
        name, colon, number = value.partition(":")
        port = colon + number
        name = name[:-1] if name.endswith(".") else name
        if not name or not set(name) <= NAME_CHARACTERS or name.startswith("."):
            return None
    if not name or (port and not (port[0] == ":" and len(port) <= 6
                                  and all(c in string.digits for c in port[1:]))):
        return None
    return name


def bind_address(text: str) -> tuple[str, int]:
    """What the server's command line names to listen on — ``host:port``, ``[v6]:port`` or
    ``localaddr:port`` — as (host, port), an IPv6 address without brackets; port 0 picks a
    free port. ``ValueError`` says what is wrong; a URL (``http://...``) is not an address
    to bind."""
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"address {text!r} is not host:port (e.g. {EXAMPLE})")
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"port {port!r} is not a number from 0 to 65535")
    name = host_name(host) if host.startswith("[") or ":" not in host else None
    if name is None or (name.startswith("[") and not host.startswith("[")):
        raise ValueError(f"host {host.strip('[]')!r} is not an IP address or host name")
    return name.strip("[]"), int(port)


def local_address() -> str:
    """This machine's address on its local network, or ``127.0.0.1`` when it has none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(PROBE)
            ip = ipaddress.ip_address(probe.getsockname()[0])
    except (OSError, ValueError):
        return "127.0.0.1"
    return "127.0.0.1" if ip.is_loopback or ip.is_unspecified else str(ip)


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks (``10.0.0.0/8``); ``ValueError`` names a bad one."""
    networks = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)
