"""The network registry: a network's URL name → its class. A new network is one new module
plus one line here."""

from __future__ import annotations

from nn_server.networks.base import Network, Prediction
from nn_server.networks.lenet import LeNet

REGISTRY: dict[str, type[Network]] = {cls.name: cls for cls in (LeNet,)}


class UnknownNetwork(LookupError):
    """No network is registered under that name; the message lists the valid ones."""


def network_class(name: str) -> type[Network]:
    """The class registered as ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownNetwork(
            f"unknown network {name!r}; available: {', '.join(sorted(REGISTRY))}"
        ) from None


__all__ = [
    "REGISTRY",
    "LeNet",
    "Network",
    "Prediction",
    "UnknownNetwork",
    "network_class",
]
