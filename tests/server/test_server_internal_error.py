"""500: an unexpected exception is logged with its traceback; the client gets JSON only.

The live server has no route that fails on purpose, so this one test runs the real app
in-process (``create_app``) with an extra failing route, over HTTP with sanic-testing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sanic import Request, Sanic
from sanic_testing.testing import SanicTestClient

from nn_server.core.config import Config
from nn_server.store.local import LocalStore
from nn_server.web.app import create_app
from nn_server.web.errors import INTERNAL_ERROR
from tests.conftest import AUTH_HEADER, seed_weights


def test_500_is_json_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)  # allows a second app of the same name
    LocalStore(tmp_path, "lenet").seed(seed_weights())
    app = create_app(Config(state_dir=tmp_path))

    @app.get("/boom")
    async def boom(request: Request) -> None:
        raise RuntimeError("secret internal detail")

    with caplog.at_level(logging.ERROR):
        _, response = SanicTestClient(app).get("/boom", headers={"Authorization": AUTH_HEADER})
    assert response.status == 500
    assert response.json == {"error": INTERNAL_ERROR, "status": 500}
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert "secret internal detail" in caplog.text
    assert "Traceback" in caplog.text
