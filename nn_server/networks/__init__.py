"""The network registry: a network's URL name → its class.

A new network is one module in this package (a ``Network`` subclass: model, preprocessing,
labels, data set, recipe), its weights in ``weights/``, and one line in ``NETWORKS``.
Networks kept outside the package join the same way, by ``module:Class`` in the
``NN_EXTRA_NETWORKS`` environment variable (comma-separated), which every process of a
server — workers and trainers alike — reads when it starts.
"""

from __future__ import annotations

import importlib
import os

from nn_server.core.errors import Missing
from nn_server.networks.base import Augmentation, Network, Prediction, Recipe

NETWORKS: tuple[str, ...] = (
    "nn_server.networks.lenet:LeNet",
    "nn_server.networks.fashion:Fashion",
)
EXTRA_ENV = "NN_EXTRA_NETWORKS"


class UnknownNetwork(Missing):
    """No network is registered under that name; the message lists the valid ones."""


class RegistryError(ImportError):
    """A registry entry cannot be loaded; the message names the entry."""


def load(entry: str) -> type[Network]:
    """The ``Network`` subclass named by ``"module:Class"``."""
    module_name, _, class_name = entry.strip().partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise RegistryError(f"network {entry!r} cannot be loaded: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Network)):
        raise RegistryError(f"network {entry!r} is not a nn_server.networks.Network subclass")
    return cls


def registry(entries: tuple[str, ...]) -> dict[str, type[Network]]:
    extra = tuple(e for e in os.environ.get(EXTRA_ENV, "").split(",") if e.strip())
    classes = [load(entry) for entry in (*entries, *extra)]
    return {cls.name: cls for cls in classes}


REGISTRY: dict[str, type[Network]] = registry(NETWORKS)


def network_class(name: str) -> type[Network]:
    """The class registered as ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownNetwork(
            f"unknown network {name!r}; available: {', '.join(sorted(REGISTRY))}"
        ) from None


__all__ = [
    "EXTRA_ENV",
    "NETWORKS",
    "REGISTRY",
    "Augmentation",
    "Network",
    "Prediction",
    "Recipe",
    "RegistryError",
    "UnknownNetwork",
    "network_class",
]
