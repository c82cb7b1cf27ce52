"""``GET /health`` (liveness), ``GET /ready`` (every network has weights loaded; each one's
readiness is listed) and ``GET /openapi.json`` (the API's description), all without auth."""

from __future__ import annotations

import os

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from nn_server.engine.serving import Models
from nn_server.networks import Registry
from nn_server.web import openapi
from nn_server.web.routes import inference
from nn_server.web.routes.verbs import read
from nn_server.web.workers import census

PUBLIC_PATHS = frozenset({"/health", "/ready", "/openapi.json", *inference.PUBLIC_PATHS})
"""Paths the auth middleware lets through without credentials: the probes a load balancer
or Kubernetes sends (``/health``, ``/ready``, and the Open Inference Protocol's
``/v2/health/live`` and ``/v2/health/ready``) and the API's description."""


def health_blueprint(networks: Registry) -> Blueprint:
    bp = Blueprint("health")

    @read(bp, "/health", name="health")
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    # Built once per worker: the registry does not change while the server runs.
    described = openapi.document(networks.values())

    @read(bp, "/openapi.json", name="openapi")
    async def openapi_json(request: Request) -> HTTPResponse:
        return json(described)

    @read(bp, "/ready", name="ready")
    async def ready(request: Request) -> HTTPResponse:
        models: Models = request.app.ctx.models
        body = {
            "ready": models.ready, "worker": os.getpid(),
            "networks": {
                name: {"ready": version is not None, "weights_version": version}
                for name, version in models.versions().items()
            },
            "batching": {
                name: {"batches": b.batches, "items": b.items, "largest": b.largest,
                       "queued": b.queued}
                for name, b in models.batch_stats().items()
            },
        }
        problems = []
        if not models.ready:
            missing = ", ".join(n for n, v in models.versions().items() if v is None)
            problems.append(f"no weights loaded for {missing}")
        if hasattr(request.app, "multiplexer"):  # production: count the worker processes
            workers = census(request.app.m.workers, request.app.ctx.config.workers)
            body["workers"] = {"expected": workers.expected, "live": workers.live,
                               "restarts": workers.restarts}
            if workers.live < workers.expected:
                problems.append(f"{workers.live} of {workers.expected} workers are live")
        if not problems:
            return json(body)
        body["ready"] = False
        return json({"error": "; ".join(problems), "status": 503, **body}, status=503)

    return bp
