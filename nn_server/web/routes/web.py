"""The web page: ``GET /`` (``nn_server/web/static/index.html``) and ``GET /static/<name>``,
its scripts, style sheet and icon. Plain files shipped in the package — no build step, no
request leaving the server, which the Content-Security-Policy also enforces. Behind the
same Basic auth as the API: the browser asks once and sends the credentials on every
same-origin request the page makes."""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, file

from nn_server.web.errors import NotFound
from nn_server.web.routes.verbs import read

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
}
# Everything from this server and nothing else; style attributes are set through the
# CSSOM (element.style), which 'self' allows, so no 'unsafe-inline' anywhere.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
HTML = "text/html"


def web_blueprint() -> Blueprint:
    bp = Blueprint("web")
    # Fixed when the worker starts: the page's files are part of the package. The pages
    # themselves have their own routes, which send their Content-Security-Policy.
    files = {p.name: p for p in STATIC_DIR.iterdir()
             if p.is_file() and p.suffix in MEDIA_TYPES and p.suffix != ".html"}

    @read(bp, "/", name="web_page", ctx_answers=HTML)
    async def page(request: Request) -> HTTPResponse:
        return await send(request, STATIC_DIR / "index.html", PAGE_POLICY)

    # ctx_answers: not JSON, and not one type either (scripts, styles, an icon).
    @read(bp, "/static/<name:str>", name="web_static", ctx_answers="*/*")
    async def static(request: Request, name: str) -> HTTPResponse:
        path = files.get(name)
        if path is None:
            raise NotFound(f"no file {name!r} in /static")
        return await send(request, path)

    return bp


async def send(request: Request, path: Path, policy: str | None = None) -> HTTPResponse:
    """One file, revalidated by Last-Modified (no-cache), so a new release shows at once."""
    headers = {"X-Content-Type-Options": "nosniff"}
    if policy is not None:
        headers["Content-Security-Policy"] = policy
    return await file(path, mime_type=MEDIA_TYPES[path.suffix], headers=headers,
                      request_headers=request.headers)
