"""``GET /openapi.json`` describes every route the server really has."""

from __future__ import annotations

import re

from sanic import Sanic

from nn_server.core.config import Config
from nn_server.networks import load_registry
from nn_server.web.app import create_app
from nn_server.web.openapi import document
from tests.conftest import LiveServer
from tests.server.conftest import call

REGISTRY = load_registry()


def test_every_route_is_described(tmp_path, monkeypatch) -> None:
    """Compared with Sanic's router: a route added without a description fails here."""
    monkeypatch.setattr(Sanic, "test_mode", True)  # allows a second app of the same name
    app = create_app(Config(state_dir=tmp_path))
    app.router.finalize()
    templates = {(re.sub(r"<(\w+):\w+>", r"{\1}", f"/{r.path}"), method.lower())
                 for r in app.router.routes for method in r.methods
                 if method not in ("HEAD", "OPTIONS")}
    # One route set serves every network; the document spells it out per network, so
    # that each one's labels and shapes are in its schemas.
    routes = {(path.replace("{network}", name), method) for path, method in templates
              for name in (REGISTRY if path.startswith("/{network}/") else [""])}
    described = {(path, method) for path, item in document(REGISTRY.values())["paths"].items()
                 for method in item}
    assert routes == described


async def test_served_without_auth_and_consistent(server: LiveServer, http) -> None:
    status, doc, _ = await call(http, server, "GET", "/openapi.json", auth=False)
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["basic"] == {"type": "http", "scheme": "basic"}
    assert doc["paths"]["/health"]["get"]["security"] == []
    # Every $ref points at a schema that exists.
    text = str(doc)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in doc["components"]["schemas"], name
    classify = doc["paths"]["/lenet/classify"]["post"]["responses"]
    assert {"200", "400", "401", "413", "415"} <= set(classify)
