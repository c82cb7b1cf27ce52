"""Live servers for the SDK tests, built with ``tests/conftest.py``'s ``start_server``.

``shipped_server`` serves the weights shipped in the package (the shared ``server`` starts
from small quick-trained ones, too weak to read every sample image) and is never retrained;
training happens on ``tls_server`` and ``compat_server``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOT_CONFTEST = ROOT / "tests" / "conftest.py"
SHIPPED_WEIGHTS = ROOT / "nn_server" / "networks" / "weights" / "lenet.params"
SMALL_BODY = 100_000
"""NN_MAX_BODY of ``compat_server``: a 100 kB body is already too large there."""


def root_conftest(config: pytest.Config) -> Any:
    """``tests/conftest.py`` as pytest loaded it (every conftest is a module "conftest")."""
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) == str(ROOT_CONFTEST):
            return plugin
    raise RuntimeError(f"{ROOT_CONFTEST} is not loaded")


@pytest.fixture(scope="session")
def start_server(pytestconfig: pytest.Config) -> Callable[..., Any]:
    """``tests/conftest.py``'s ``start_server(*args, env=None, tls=False)``."""
    return root_conftest(pytestconfig).start_server  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def shipped_server(start_server: Callable[..., Any]) -> Iterator[Any]:
    """HTTP, development mode, the shipped weights; never retrained."""
    env = {"NN_SEED_WEIGHTS": str(SHIPPED_WEIGHTS)} if SHIPPED_WEIGHTS.exists() else {}
    with start_server("-d", "127.0.0.1:0", env=env) as live:
        yield live


@pytest.fixture(scope="session")
def tls_server(start_server: Callable[..., Any]) -> Iterator[Any]:
    """HTTPS (``-s``) with a certificate minted for this run; its weights get retrained."""
    with start_server("-d", "127.0.0.1:0", tls=True) as live:
        yield live


@pytest.fixture(scope="session")
def compat_server(start_server: Callable[..., Any]) -> Iterator[Any]:
    """Seed-compatible (503 while training) and a small body limit."""
    env = {"NN_SEED_COMPAT": "1", "NN_MAX_BODY": str(SMALL_BODY)}
    with start_server("-d", "127.0.0.1:0", env=env) as live:
        yield live


@pytest.fixture(scope="session")
def compat_body_limit() -> int:
    """``compat_server``'s NN_MAX_BODY."""
    return SMALL_BODY
