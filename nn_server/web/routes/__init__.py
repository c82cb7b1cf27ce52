"""One blueprint per resource: the networks, their versions and sample pictures (generated
from the registry), the Open Inference Protocol's routes, health and metrics, the web page
and Swagger UI."""

from nn_server.web.routes.docs import docs_blueprint
from nn_server.web.routes.health import health_blueprint
from nn_server.web.routes.inference import inference_blueprint
from nn_server.web.routes.metrics import metrics_blueprint
from nn_server.web.routes.networks import networks_blueprint
from nn_server.web.routes.samples import samples_blueprint
from nn_server.web.routes.versions import versions_blueprint
from nn_server.web.routes.web import web_blueprint

__all__ = [
    "docs_blueprint",
    "health_blueprint",
    "inference_blueprint",
    "metrics_blueprint",
    "networks_blueprint",
    "samples_blueprint",
    "versions_blueprint",
    "web_blueprint",
]
