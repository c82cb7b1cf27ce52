"""Versions, per network: ``GET /<net>/versions`` (every kept version, the served one
marked), ``POST /<net>/versions/<v>/serve`` (rollback and manual promotion are this one
operation) and ``GET /<net>/versions/<v>/onnx`` (the version as an ONNX model)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, file, json, raw

from nn_server.core.config import PRECISIONS, Config
from nn_server.engine.serving import served_precision
from nn_server.networks import Network, Registry
from nn_server.networks.export import ExportError, export_in_process
from nn_server.networks.quantize import NotQuantizable, quantize
from nn_server.store import open_store
from nn_server.store.base import DamagedVersion, UnknownVersion
from nn_server.web.errors import ApiError, Conflict, InvalidRequest, NotFound
from nn_server.web.routes.verbs import NETWORK, read

ONNX_MEDIA = "application/octet-stream"
log = logging.getLogger("nn_server")


class ExportFailed(ApiError):
    status_code = 500


def versions_blueprint(config: Config, networks: Registry) -> Blueprint:
    bp = Blueprint("versions")
    stores = {name: open_store(config.location, name, keep=config.keep_versions)
              for name in networks}
    exports: dict[tuple[str, str], asyncio.Lock] = {}

    def weights_of(cls: type[Network], version: str) -> Path:
        try:
            return stores[cls.name].weights_of(version)
        except UnknownVersion:
            raise NotFound(f"{cls.title} has no version {version!r}; see /{cls.name}/versions") \
                from None

    @read(bp, f"/{NETWORK}/versions", name="versions")
    async def versions(request: Request, network: str) -> HTTPResponse:
        store = stores[networks.network(network).name]
        pointer = store.pointer()
        return json({
            "served": pointer.version if pointer else None,
            "previous": pointer.previous if pointer else None,
            "versions": [dataclasses.asdict(v) for v in store.versions()],
        })

    @bp.post(f"/{NETWORK}/versions/<version:str>/serve", name="serve",
             ctx_changes_state=True)
    async def serve(request: Request, network: str, version: str) -> HTTPResponse:
        cls = networks.network(network)
        weights_of(cls, version)
        try:
            pointer = stores[cls.name].serve(version)
        except DamagedVersion as exc:
            raise Conflict(f"{exc}; serve another version") from None
        log.info("%s: version %s served on request (rollback: %s)", cls.name, version,
                 pointer.previous)
        return json({"served": pointer.version, "previous": pointer.previous})

    @read(bp, f"/{NETWORK}/versions/<version:str>/onnx", name="onnx", ctx_answers=ONNX_MEDIA)
    async def onnx(request: Request, network: str, version: str) -> HTTPResponse:
        """The float export as trained, or ``?precision=int8`` its quantized graph; without
        the parameter, the one this server computes with, whose answers are its own."""
        cls = networks.network(network)
        name = cls.name
        asked = precision_asked(request, cls)
        precision = asked or served_precision(cls, config.runtime, config.precision)
        weights = weights_of(cls, version)
        target = weights.with_suffix(".onnx")
        if not target.is_file():
            async with exports.setdefault((name, version), asyncio.Lock()):
                if not target.is_file():
                    try:
                        await export_in_process(cls, weights, target)
                    except ExportError as exc:
                        log.error("ONNX export failed: %s", exc)
                        raise ExportFailed("the ONNX export failed; the server log has "
                                           "the details") from None
        if precision == "float":
            return await file(target, mime_type=ONNX_MEDIA, filename=f"{name}-{version}.onnx")
        try:
            model = await asyncio.get_running_loop().run_in_executor(None, quantize,
                                                                     target.read_bytes())
        except NotQuantizable as exc:  # the workers serve this version in float, too
            if asked:
                raise Conflict(f"version {version} has no int8 form ({exc}); it is served "
                               "in float: ?precision=float") from None
            return await file(target, mime_type=ONNX_MEDIA, filename=f"{name}-{version}.onnx")
        return raw(model, content_type=ONNX_MEDIA, headers={
            "Content-Disposition": f'attachment; filename="{name}-{version}-int8.onnx"'})

    return bp


def precision_asked(request: Request, cls: type[Network]) -> str | None:
    """``?precision=``: ``float`` or ``int8``; None when not given."""
    query = request.get_args(keep_blank_values=True)
    asked: str | None = query.get("precision")
    if asked is None:
        return None
    if asked not in PRECISIONS or len(query.getlist("precision")) > 1:
        raise InvalidRequest(f'"precision" must be one of {", ".join(PRECISIONS)}, not '
                             f"{asked!r}")
    if asked == "int8" and not cls.int8:
        raise InvalidRequest(f"{cls.title} has no int8 graph; it is served in float")
    return asked
