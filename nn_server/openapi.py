"""The OpenAPI 3.1 description of the server, built from the network registry.

Served at ``GET /openapi.json`` (no auth: it describes, it does not disclose), so clients and
tools (Swagger UI, schemathesis, code generators) see every route, its answers and errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nn_server import __version__
from nn_server.networks import Network

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def ok(description: str, schema: dict[str, Any], media: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return ok(description, ref("Error"))


COMMON_ERRORS = {
    "401": error("Missing or wrong HTTP Basic credentials (WWW-Authenticate: Basic)"),
    "406": error("Accept excludes application/json"),
    "429": error("Too many password checks queued; retry after Retry-After seconds"),
}


def network_paths(cls: type[Network]) -> dict[str, Any]:
    tag = [cls.title]
    base = f"/{cls.name}"
    training_503 = error(f"Seed-compatible mode only: {cls.title} is training")
    return {
        f"{base}/about": {"get": {
            "tags": tag, "summary": f"Describe {cls.title}",
            "responses": {"200": ok("The description", ref("About")), **COMMON_ERRORS},
        }},
        f"{base}/train": {"get": {
            "tags": tag, "summary": f"Start training {cls.title} in the background",
            "responses": {
                "200": ok("Training started (answers at once)", ref("TrainingStarted")),
                "409": error("A training is already running"),
                "503": training_503, **COMMON_ERRORS,
            },
        }},
        f"{base}/train/status": {"get": {
            "tags": tag, "summary": "The last training result and live progress",
            "responses": {
                "200": ok("The status", ref("TrainingStatus")), "503": training_503,
                **COMMON_ERRORS,
            },
        }},
        f"{base}/classify": {"post": {
            "tags": tag, "summary": f"Classify one image, or a batch, with {cls.title}",
            "requestBody": {"required": True, "content": {JSON: {"schema": {
                "oneOf": [ref("ClassifyOne"), ref("ClassifyMany")]}}}},
            "responses": {
                "200": ok("One answer, or one per image for the batch form",
                          {"oneOf": [ref("Classification"), ref("Classifications")]}),
                "400": error("Bad JSON, bad base64, unreadable, blank, too small or too "
                             "large image, or a batch over the limit"),
                "413": error("Body over the size limit"),
                "415": error("Body not JSON, or an image format other than JPEG/PNG/BMP/TIFF"),
                "503": error("Weights not loaded yet, shutting down, or training "
                             "(seed-compatible mode)"),
                **COMMON_ERRORS,
            },
        }},
    }


def document(networks: Iterable[type[Network]]) -> dict[str, Any]:
    """The whole OpenAPI document for these networks."""
    networks = list(networks)
    paths: dict[str, Any] = {
        "/list_nn": {"get": {
            "summary": "The networks this server offers",
            "responses": {"200": ok("One line per network", ref("NetworkList")),
                          **COMMON_ERRORS},
        }},
        "/health": {"get": {
            "summary": "Liveness", "security": [],
            "responses": {"200": ok("The process answers", {"type": "object"})},
        }},
        "/ready": {"get": {
            "summary": "Readiness: this worker has weights loaded",
            "responses": {"200": ok("Ready", {"type": "object"}),
                          "503": error("Weights are still loading"), **COMMON_ERRORS},
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics, summed over every worker",
            "responses": {"200": ok("Text exposition format", {"type": "string"},
                                    "text/plain"), **COMMON_ERRORS},
        }},
        "/openapi.json": {"get": {
            "summary": "This document", "security": [],
            "responses": {"200": ok("OpenAPI 3.1", {"type": "object"})},
        }},
    }
    for cls in networks:
        paths.update(network_paths(cls))
    string = {"type": "string"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "nn-server", "version": __version__,
                 "description": "List, train and use neural networks over HTTP."},
        "security": [{"basic": []}],
        "tags": [{"name": cls.title, "description": cls.description} for cls in networks],
        "paths": paths,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": string, "status": {"type": "integer"}}},
                "NetworkList": {"type": "object", "required": ["text"], "properties": {
                    "text": {"type": "array", "items": string},
                    "networks": {"type": "array", "items": {"type": "object"}}}},
                "About": {"type": "object", "required": ["text"], "properties": {
                    "text": string, "name": string, "title": string,
                    "labels": {"type": "array", "items": string}}},
                "TrainingStarted": {"type": "object", "required": ["text"], "properties": {
                    "text": string, "state": string, "pid": {"type": "integer"},
                    "status_url": string}},
                "TrainingStatus": {"type": "object", "required": ["accuracy", "datetime"],
                                   "properties": {
                    "accuracy": {**string, "examples": ["99.57"]},
                    "datetime": {**string, "examples": ["2026-11-27 22:35:49"]},
                    "state": {"enum": ["idle", "training", "failed"]},
                    "progress": {"type": ["object", "null"]},
                    "error": {"type": ["string", "null"]},
                    "weights_version": {"type": ["string", "null"]}}},
                "ClassifyOne": {"type": "object", "required": ["image"], "properties": {
                    "image": {**string, "contentEncoding": "base64"}}},
                "ClassifyMany": {"type": "object", "required": ["images"], "properties": {
                    "images": {"type": "array", "minItems": 1, "maxItems": 1024,
                               "items": {**string, "contentEncoding": "base64"}}}},
                "Classification": {"type": "object", "required": ["number"], "properties": {
                    "number": string, "confidence": {"type": "number"},
                    "probabilities": {"type": "array", "items": {"type": "number"}},
                    "weights_version": string}},
                "Classifications": {"type": "object", "required": ["numbers", "results"],
                                    "properties": {
                    "numbers": {"type": "array", "items": {"type": ["string", "null"]}},
                    "results": {"type": "array", "items": {"oneOf": [
                        ref("Classification"), ref("Error")]}},
                    "weights_version": string}},
            },
        },
    }
