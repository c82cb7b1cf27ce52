"""``GET /metrics``: Prometheus text format, summed over every worker of this server."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, text

from nn_server import metrics
from nn_server.serving import Models

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"


def metrics_blueprint() -> Blueprint:
    bp = Blueprint("metrics")

    @bp.get(PATH, name="metrics", ctx_answers="text/plain")
    async def scrape(request: Request) -> HTTPResponse:
        models: Models = request.app.ctx.models
        state_dir = request.app.ctx.config.state_dir
        # This worker's own counts are fresh; the others' are at most FLUSH_S old.
        metrics.publish(state_dir, request.app.ctx.metrics.snapshot(models.batch_sizes()))
        body = metrics.render(
            metrics.collect(state_dir), models.versions(),
            {name: s.state.is_training() for name, s in models.served.items()},
        )
        return text(body, content_type=CONTENT_TYPE)

    return bp
