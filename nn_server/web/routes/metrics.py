"""``GET /metrics``: Prometheus text format, summed over every process of this server."""

from __future__ import annotations

import asyncio

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, raw

from nn_server.engine.serving import Models
from nn_server.store import Store
from nn_server.store.base import StoreUnavailable
from nn_server.web.metrics import CONTENT_TYPE, ServerGauges, render
from nn_server.web.routes.verbs import read
from nn_server.web.workers import census

PATH = "/metrics"


def metrics_blueprint() -> Blueprint:
    bp = Blueprint("metrics")

    @read(bp, PATH, name="metrics", ctx_answers="text/plain")
    async def scrape(request: Request) -> HTTPResponse:
        app = request.app
        models: Models = app.ctx.models
        workers = None
        if hasattr(app, "multiplexer"):
            count = census(app.m.workers, app.ctx.config.workers)
            workers = (count.expected, count.live, count.restarts)
        # Is each network training: Redis in a cluster, read in a thread, so a hung Redis
        # stalls the scrape and not the worker's other requests.
        trains = await asyncio.to_thread(
            lambda: {name: training(s.store) for name, s in models.served.items()})
        gauges = ServerGauges(models.versions(), trains, workers)
        return raw(render(gauges), content_type=CONTENT_TYPE)

    return bp


def training(store: Store) -> bool | None:
    """Whether the network trains; None while the state does not answer."""
    try:
        return store.is_training()
    except StoreUnavailable:
        return None
