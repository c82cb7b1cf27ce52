"""Swagger UI at ``GET /docs``, rendering ``/openapi.json``, from local files only.

The UI itself (``swagger-ui-bundle.js``, its style sheet and icons) comes from the
``swagger-ui-bundle-v2`` package, Swagger UI 5 — the first major version that reads
OpenAPI 3.1 — served at ``/docs/<asset>``; the page and its start-up script are ours
(``nn_server/web/static/docs.html``, ``docs.js``), so the UI loads nothing from elsewhere and
never asks an outside validator about the document.
"""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from swagger_ui_bundle import swagger_ui_path

from nn_server.web.errors import NotFound
from nn_server.web.routes.verbs import read
from nn_server.web.routes.web import HTML, STATIC_DIR, send

SWAGGER_DIR = Path(str(swagger_ui_path))
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-16x16.png", "favicon-32x32.png")
# Swagger UI's React components set style attributes, and its icons are data: URLs.
DOCS_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def docs_blueprint() -> Blueprint:
    bp = Blueprint("docs")

    @read(bp, "/docs", name="docs", ctx_answers=HTML)
    async def docs(request: Request) -> HTTPResponse:
        return await send(request, STATIC_DIR / "docs.html", DOCS_POLICY)

    @read(bp, "/docs/<asset:str>", name="docs_asset", ctx_answers="*/*")
    async def asset(request: Request, asset: str) -> HTTPResponse:
        if asset not in ASSETS:
            raise NotFound(f"no file {asset!r} in /docs")
        return await send(request, SWAGGER_DIR / asset)

    return bp
