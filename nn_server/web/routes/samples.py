"""Each network's sample pictures, for the web page: ``GET /<net>/samples`` lists them and
``GET /<net>/samples/<name>`` serves one (``?format=png``: as PNG, for browsers that do
not show TIFF). Only the files ``Network.sample_files()`` names are ever served: a name is
looked up among them, never joined to a path."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
from PIL import Image, ImageOps
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, file, json, raw

from nn_server.networks import Network, Registry
from nn_server.networks.images import to_gray
from nn_server.web.errors import InvalidRequest, NotFound
from nn_server.web.routes.verbs import NETWORK, read

MEDIA_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp",
    ".tif": "image/tiff", ".tiff": "image/tiff",
}
SHOWN_BY_BROWSERS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
"""What every browser's ``<img>`` shows; the rest gets a PNG ``preview``."""


def samples_blueprint(networks: Registry) -> Blueprint:
    bp = Blueprint("samples")

    @read(bp, f"/{NETWORK}/samples", name="samples")
    async def samples(request: Request, network: str) -> HTTPResponse:
        cls = networks.network(network)
        return json({"samples": [describe(cls, path) for path in cls.sample_files()]})

    @read(bp, f"/{NETWORK}/samples/<sample:str>", name="sample", ctx_answers="image/*")
    async def sample(request: Request, network: str, sample: str) -> HTTPResponse:
        cls = networks.network(network)
        # Looked up among the samples, never joined to a path: nothing else can be named.
        path = {p.name: p for p in cls.sample_files()}.get(unquote(sample))
        if path is None:
            raise NotFound(f"{cls.title} has no sample {sample!r}; see /{cls.name}/samples")
        # Blank values kept: "?format=" is a bad value, not none.
        wanted = request.get_args(keep_blank_values=True).get("format")
        if wanted is None:
            return await file(path, mime_type=MEDIA_TYPES[path.suffix.lower()])
        if wanted != "png":
            raise InvalidRequest(f'"format" can only be "png", not {wanted!r}')
        png = await asyncio.get_running_loop().run_in_executor(None, as_png, path)
        return raw(png, content_type="image/png")

    return bp


def describe(cls: type[Network], path: Path) -> dict[str, Any]:
    """One sample: its name, its label (from the index its name starts with) and URLs."""
    url = f"/{cls.name}/samples/{quote(path.name)}"
    return {
        "name": path.name,
        "label": cls.sample_label(path),
        "url": url,
        "preview": url if path.suffix.lower() in SHOWN_BY_BROWSERS else f"{url}?format=png",
    }


def as_png(path: Path) -> bytes:
    """The picture as a PNG a browser shows (16-bit grey scaled by its range)."""
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened) or opened
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            image = Image.fromarray((to_gray(image) * 255.0 + 0.5).astype(np.uint8))
        elif image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
            image = image.convert("RGB")
        out = io.BytesIO()
        image.save(out, "PNG")
        return out.getvalue()
