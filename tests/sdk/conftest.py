"""Live servers for the SDK tests, built with ``tests/conftest.py``'s ``start_server``.

``shipped_server`` (in tests/conftest.py) serves the shipped weights and is never
retrained; training happens on ``tls_server`` and ``compat_server``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, start_server

SMALL_BODY = 100_000
"""NN_MAX_BODY of ``compat_server``: a 100 kB body is already too large there."""


@pytest.fixture(scope="session")
def tls_server() -> Iterator[LiveServer]:
    """HTTPS (``-s``) with a certificate minted for this run; its weights get retrained."""
    with start_server("-d", "127.0.0.1:0", tls=True) as live:
        yield live


@pytest.fixture(scope="session")
def compat_server() -> Iterator[LiveServer]:
    """Seed-compatible (503 while training) and a small body limit."""
    env = {"NN_SEED_COMPAT": "1", "NN_MAX_BODY": str(SMALL_BODY)}
    with start_server("-d", "127.0.0.1:0", env=env) as live:
        yield live


@pytest.fixture(scope="session")
def compat_body_limit() -> int:
    """``compat_server``'s NN_MAX_BODY."""
    return SMALL_BODY
