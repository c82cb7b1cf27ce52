"""The top layer: everything HTTP — the Sanic app factory and its blueprints, auth, hosts,
connection limits, the Open Inference Protocol, OpenAPI, metrics, the web page — and the
processes that serve it (``python -m nn_server``: the main process and its workers)."""

APP_NAME = "nn_server"
"""The name of the workers' app and of the main process's: Sanic hands the main process's
sockets to the workers by it."""
