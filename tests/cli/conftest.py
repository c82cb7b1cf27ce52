"""Live servers for the CLI tests, built on ``tests/conftest.py``'s ``start_server``.

``shipped_server`` serves the shipped weights (good enough to read every sample image) and
is never retrained; ``tls_training_server`` is HTTPS and is where the CLI trains.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOT_CONFTEST = ROOT / "tests" / "conftest.py"
SHIPPED_WEIGHTS = ROOT / "nn_server" / "networks" / "weights" / "lenet.params"


def _root_conftest(config: pytest.Config) -> Any:
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) == str(ROOT_CONFTEST):
            return plugin
    raise RuntimeError(f"{ROOT_CONFTEST} is not loaded")


@pytest.fixture(scope="session")
def shipped_server(pytestconfig: pytest.Config) -> Iterator[Any]:
    """HTTP, development mode, the shipped weights; never retrained."""
    env = {"NN_SEED_WEIGHTS": str(SHIPPED_WEIGHTS)} if SHIPPED_WEIGHTS.exists() else {}
    with _root_conftest(pytestconfig).start_server("-d", "127.0.0.1:0", env=env) as live:
        yield live


@pytest.fixture(scope="session")
def tls_training_server(pytestconfig: pytest.Config) -> Iterator[Any]:
    """HTTPS with a certificate minted for this run; the CLI tests train it."""
    with _root_conftest(pytestconfig).start_server("-d", "127.0.0.1:0", tls=True) as live:
        yield live
