"""Routes that read: every route that answers GET answers HEAD too (load balancers probe
with HEAD); Sanic sends HEAD's headers without the body. The original ``GET /<net>/train``
changes state, so it keeps plain ``bp.get``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from sanic import Blueprint

READ = ("GET", "HEAD")
NETWORK = "<network:str>"
"""The path segment naming a network in the per-network routes (one route set for all)."""
Handler = TypeVar("Handler", bound=Callable[..., Any])


def read(bp: Blueprint, uri: str, **kwargs: Any) -> Callable[[Handler], Handler]:
    """``bp.get(uri, ...)`` that answers HEAD as well."""
    return cast(Callable[[Handler], Handler], bp.route(uri, methods=READ, **kwargs))
