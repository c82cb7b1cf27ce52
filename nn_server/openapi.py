"""The OpenAPI 3.1 description of the server, built from the network registry.

Served at ``GET /openapi.json`` (no auth: it describes, it does not disclose), so clients and
tools (Swagger UI, schemathesis, code generators) see every route, its answers and errors.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any

from nn_server import __version__
from nn_server.networks import Network
from nn_server.training.status import TrainingStatus

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def ok(description: str, schema: dict[str, Any], media: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


SCALARS: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def schema_of(cls: type, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A JSON schema for a dataclass, from its type hints (``overrides`` replace fields): the
    document describes exactly the type the route answers with."""
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        properties[f.name] = schema_of_type(hints[f.name])
    properties.update(overrides or {})
    # Every field is always present on the wire (None as null).
    return {"type": "object", "required": list(properties), "properties": properties}


def schema_of_type(hint: Any) -> dict[str, Any]:
    if hint in SCALARS:
        return {"type": SCALARS[hint]}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (types.UnionType, typing.Union):
        options = [schema_of_type(a) for a in args if a is not type(None)]
        nullable = type(None) in args
        if len(options) == 1 and "type" in options[0] and len(options[0]) == 1:
            kind = options[0]["type"]
            return {"type": [kind, "null"] if nullable else kind}
        return {"anyOf": [*options, *([{"type": "null"}] if nullable else [])]}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return schema_of(hint)
    raise TypeError(f"no JSON schema for {hint!r}")


def error(description: str) -> dict[str, Any]:
    return ok(description, ref("Error"))


WRONG_HOST = {"421": error("The Host header names a host this server does not answer to")}
COMMON_ERRORS = {
    "401": error("Missing or wrong HTTP Basic credentials (WWW-Authenticate: Basic)"),
    "406": error("Accept excludes application/json"),
    **WRONG_HOST,
    "429": error("Too many password checks from this client queued; retry after Retry-After "
                 "seconds"),
}


def network_paths(cls: type[Network]) -> dict[str, Any]:
    tag = [cls.title]
    base = f"/{cls.name}"
    training_503 = error(f"Seed-compatible mode only: {cls.title} is training")
    # GET is the original contract, POST the proper method; both do the same.
    train = {
        "tags": tag, "summary": f"Start training {cls.title} in the background",
        "description": "Needs the admin role. Refused to browsers on another site.",
        "responses": {
            "200": ok("Training started (answers at once)", ref("TrainingStarted")),
            "403": error("Not an admin, or a browser request from another site"),
            "409": error("A training is already running"),
            "503": training_503, **COMMON_ERRORS,
        },
    }
    return {
        f"{base}/about": {"get": {
            "tags": tag, "summary": f"Describe {cls.title}",
            "responses": {"200": ok("The description", ref("About")), **COMMON_ERRORS},
        }},
        f"{base}/train": {"get": train, "post": {**train}},
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
            "responses": {"200": ok("The process answers", {"type": "object"}), **WRONG_HOST},
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
            "responses": {"200": ok("OpenAPI 3.1", {"type": "object"}), **WRONG_HOST},
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
                "TrainingStatus": schema_of(TrainingStatus, {
                    # Strings on the wire ("" before any training), as in the original.
                    "accuracy": {**string, "examples": ["99.57"]},
                    "datetime": {**string, "examples": ["2026-11-27 22:35:49"]},
                    "weights_version": {"type": ["string", "null"]},
                }),
                "ClassifyOne": {"type": "object", "required": ["image"], "properties": {
                    "image": {**string, "contentEncoding": "base64"}}},
                "ClassifyMany": {"type": "object", "required": ["images"], "properties": {
                    "images": {"type": "array", "minItems": 1, "maxItems": 1024,
                               "items": {**string, "contentEncoding": "base64"}}}},
                "Classification": {
                    "type": "object", "required": ["label", "index", "confidence"],
                    "properties": {
                        "label": string, "index": {"type": "integer", "minimum": 0},
                        "number": {**string, "description": "LeNet only: the digit"},
                        "confidence": {"type": "number"},
                        "probabilities": {"type": "array", "items": {"type": "number"}},
                        "weights_version": string,
                    }},
                "Classifications": {
                    "type": "object", "required": ["labels", "results"], "properties": {
                        "labels": {"type": "array", "items": {"type": ["string", "null"]}},
                        "numbers": {"type": "array", "items": {"type": ["string", "null"]},
                                    "description": "LeNet only"},
                        "results": {"type": "array", "items": {"oneOf": [
                            ref("Classification"), ref("Error")]}},
                        "weights_version": string,
                    }},
            },
        },
    }
