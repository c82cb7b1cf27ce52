"""One blueprint per resource: the networks (generated from the registry) and health."""

from nn_server.routes.health import health_blueprint
from nn_server.routes.networks import networks_blueprint

__all__ = ["health_blueprint", "networks_blueprint"]
