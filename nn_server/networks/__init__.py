"""The network registry: a network's URL name → its class.

A new network is one module in this package (a ``Network`` subclass: model, preprocessing,
labels, data set, recipe), its weights in ``weights/``, and one line in ``NETWORKS``.
Networks kept outside the package join the same way, by ``module:Class`` in the
``NN_EXTRA_NETWORKS`` environment variable (comma-separated), which every process of a
server — workers and trainers alike — reads when it starts.

The server keeps its ``Registry`` on ``app.ctx.networks`` (built from its ``Config``); tools
that run on their own (the trainer, ``python -m nn_server.training``) build one with
``load_registry()``. There is no module-level registry to patch or to go stale.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping

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


class Registry(Mapping[str, type[Network]]):
    """The networks one server (or tool) knows, by URL name, in registration order."""

    def __init__(self, classes: list[type[Network]]) -> None:
        self._classes = {cls.name: cls for cls in classes}

    def __getitem__(self, name: str) -> type[Network]:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def network(self, name: str) -> type[Network]:
        """The class registered as ``name``; raises ``UnknownNetwork`` naming the others."""
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownNetwork(
                f"unknown network {name!r}; the networks are {', '.join(self._classes)}"
            ) from None


def extra_entries(text: str | None = None) -> tuple[str, ...]:
    """``NN_EXTRA_NETWORKS`` (or ``text``) as entries."""
    text = os.environ.get(EXTRA_ENV, "") if text is None else text
    return tuple(e.strip() for e in text.split(",") if e.strip())


def load_registry(extra: tuple[str, ...] | None = None) -> Registry:
    """The built-in networks and ``extra`` ones (default: ``NN_EXTRA_NETWORKS``)."""
    entries = (*NETWORKS, *(extra_entries() if extra is None else extra))
    return Registry([load(entry) for entry in entries])


def network_class(name: str) -> type[Network]:
    """For tools that run on their own (the trainer, the training CLI): ``name``'s class
    among the built-in and ``NN_EXTRA_NETWORKS`` networks; raises ``UnknownNetwork``."""
    return load_registry().network(name)


__all__ = [
    "EXTRA_ENV",
    "NETWORKS",
    "Augmentation",
    "Network",
    "Prediction",
    "Recipe",
    "Registry",
    "RegistryError",
    "UnknownNetwork",
    "extra_entries",
    "load_registry",
    "network_class",
]
