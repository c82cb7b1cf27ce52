"""Who a client is, for limits kept per client: its address, or the one a trusted proxy names.

``NN_TRUSTED_PROXIES`` lists the addresses or networks of reverse proxies in front of the
server (``127.0.0.1`` for an nginx on the same machine). A request that comes from one of
them is attributed to the last address in its ``X-Forwarded-For`` that is not itself a
trusted proxy: each proxy appends the address it got the request from, and everything to
the left of that is whatever the client chose to send. A request from anywhere else is
attributed to its own peer address, whatever headers it carries.

Limits are kept per IPv4 address and per IPv6 /64, since one IPv6 host usually holds a
whole /64 and could otherwise be a new client for every request.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from nn_server.core.addresses import Network

IPV6_PREFIX = 64


@dataclass(frozen=True)
class Clients:
    """Tells clients apart, given the proxies that are trusted to name them."""

    trusted: tuple[Network, ...] = ()

    def client_of(self, peer: str, forwarded_for: str | None) -> str:
        """The client's key: its address (an IPv6 one as its /64), ``peer`` being the
        address the request came from and ``forwarded_for`` its X-Forwarded-For."""
        address = self._parse(peer)
        if address is None:
            return peer  # not IP (a Unix socket): one client
        if self.trusted and forwarded_for and self._is_trusted(address):
            for hop in reversed(forwarded_for.split(",")):
                named = self._parse(hop.strip())
                if named is None:
                    break  # not an address: the proxy did not write it; count the proxy
                if not self._is_trusted(named):
                    address = named
                    break
        if address.version == 6:
            return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
        return str(address)

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.trusted)

    @staticmethod
    def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """An address; an IPv4 one that a dual-stack socket shows as ``::ffff:a.b.c.d`` as
        itself."""
        try:
            address = ipaddress.ip_address(text.strip("[]"))
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped
        return address
