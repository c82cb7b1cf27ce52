"""One blueprint per resource: the networks and their versions (generated from the
registry), the Open Inference Protocol's routes, health and metrics."""

from nn_server.routes.health import health_blueprint
from nn_server.routes.inference import inference_blueprint
from nn_server.routes.metrics import metrics_blueprint
from nn_server.routes.networks import networks_blueprint
from nn_server.routes.versions import versions_blueprint

__all__ = [
    "health_blueprint",
    "inference_blueprint",
    "metrics_blueprint",
    "networks_blueprint",
    "versions_blueprint",
]
