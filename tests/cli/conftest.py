"""Live servers for the CLI tests, built on ``tests/conftest.py``'s ``start_server``.

``shipped_server`` (in tests/conftest.py) serves the shipped weights and is never
retrained; ``tls_training_server`` is HTTPS and is where the CLI trains.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, start_server


@pytest.fixture(scope="session")
def tls_training_server() -> Iterator[LiveServer]:
    """HTTPS with a certificate minted for this run; the CLI tests train it."""
    with start_server("-d", "127.0.0.1:0", tls=True) as live:
        yield live
