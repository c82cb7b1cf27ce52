"""Versions, per network: ``GET /<net>/versions`` (every kept version, the served one
marked), ``POST /<net>/versions/<v>/serve`` (rollback and manual promotion are this one
operation) and ``GET /<net>/versions/<v>/onnx`` (the version as an ONNX model)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, file, json

from nn_server.core.config import Config
from nn_server.core.records import PRECISIONS, VersionRecord
from nn_server.networks import Network, Registry
from nn_server.networks.export import ExportError, export_in_process
from nn_server.networks.precision import int8_of, served_precision
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

    # The store's calls block (Redis, S3, files): each runs in a thread, so a hung Redis
    # or a slow download stalls its own request, not every request of the worker.
    async def weights_of(cls: type[Network], version: str) -> Path:
        try:
            return await asyncio.to_thread(stores[cls.name].weights_of, version)
        except UnknownVersion:
            raise NotFound(f"{cls.title} has no version {version!r}; see /{cls.name}/versions") \
                from None

    @read(bp, f"/{NETWORK}/versions", name="versions")
    async def versions(request: Request, network: str) -> HTTPResponse:
        store = stores[networks.network(network).name]
        pointer, kept = await asyncio.to_thread(lambda: (store.pointer(), store.versions()))
        forced_float = config.runtime != "onnx" or config.precision != "int8"
        return json({
            "served": pointer.version if pointer else None,
            "previous": pointer.previous if pointer else None,
            # "precision": what this server's workers run for each version.
            "versions": [{**dataclasses.asdict(v), **({"precision": "float"} if forced_float
                                                      else {})} for v in kept],
        })

    @bp.post(f"/{NETWORK}/versions/<version:str>/serve", name="serve",
             ctx_changes_state=True)
    async def serve(request: Request, network: str, version: str) -> HTTPResponse:
        cls = networks.network(network)
        await weights_of(cls, version)
        try:
            pointer = await asyncio.to_thread(stores[cls.name].serve, version)
        except DamagedVersion as exc:
            raise Conflict(f"{exc}; serve another version") from None
        log.info("%s: version %s served on request (rollback: %s)", cls.name, version,
                 pointer.previous)
        return json({"served": pointer.version, "previous": pointer.previous})

    @read(bp, f"/{NETWORK}/versions/<version:str>/onnx", name="onnx", ctx_answers=ONNX_MEDIA)
    async def onnx(request: Request, network: str, version: str) -> HTTPResponse:
        """The float export as trained, or ``?precision=int8`` its int8 model; without the
        parameter, the one this server computes with, whose answers are its own."""
        cls = networks.network(network)
        name = cls.name
        asked = precision_asked(request)
        weights = await weights_of(cls, version)
        record = await asyncio.to_thread(VersionRecord.read, weights)
        precision = asked or served_precision(record, config.runtime, config.precision)
        if precision == "int8":
            if int8_of(weights).is_file():
                return await file(int8_of(weights), mime_type=ONNX_MEDIA,
                                  filename=f"{name}-{version}-int8.onnx")
            if asked:
                measured = record.accuracies or {}
                why = (f"its int8 form scored {measured['int8']} % against float's "
                       f"{measured['float']} %" if "int8" in measured and "float" in measured
                       else "it has no int8 form")
                raise Conflict(f"version {version} is served in float: {why}; "
                               "?precision=float gives its export") from None
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
        return await file(target, mime_type=ONNX_MEDIA, filename=f"{name}-{version}.onnx")

    return bp


def precision_asked(request: Request) -> str | None:
    """``?precision=``: ``float`` or ``int8``; None when not given."""
    query = request.get_args(keep_blank_values=True)
    asked: str | None = query.get("precision")
    if asked is None:
        return None
    if asked not in PRECISIONS or len(query.getlist("precision")) > 1:
        raise InvalidRequest(f'"precision" must be one of {", ".join(PRECISIONS)}, not '
                             f"{asked!r}")
    return asked
