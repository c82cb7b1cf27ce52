"""The OpenAPI 3.1 description of the server, built from the network registry.

Served at ``GET /openapi.json`` (no auth: it describes, it does not disclose), so clients and
tools (Swagger UI, schemathesis, code generators) see every route, its answers and errors.
``parts`` holds the shared pieces, ``inference`` the Open Inference Protocol's routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nn_server import __version__
from nn_server.networks import Network
from nn_server.store.base import Version
from nn_server.store.status import TrainingStatus
from nn_server.web.body import RAW_IMAGE_MEDIA
from nn_server.web.openapi.inference import V2_TAG, inference_paths, inference_schemas
from nn_server.web.openapi.parts import (
    ASSET_PARAMETER,
    BINARY,
    COMMON_ERRORS,
    FORMAT_PARAMETER,
    JSON,
    NAME_PARAMETER,
    PRECISION_PARAMETER,
    SAMPLE_PARAMETER,
    TOP_K,
    TRAINING_PARAMETERS,
    VERSION_PARAMETER,
    WEB_TAG,
    WRONG_HOST,
    error,
    ok,
    ref,
    schema_of,
)
from nn_server.web.requests import MAX_BATCH


def network_paths(cls: type[Network]) -> dict[str, Any]:
    tag = [cls.title]
    base = f"/{cls.name}"
    training_503 = error(f"Seed-compatible mode only: {cls.title} is training")
    # GET is the original contract, POST the proper method; both do the same.
    train = {
        "tags": tag, "summary": f"Start training {cls.title} in the background",
        "description": "The result is served only if it is at least as accurate as the "
                       "served weights on the same test images, each as the workers compute it "
                       "(int8 or float; promote=better), or anyway "
                       "(promote=always); it is kept as a version either way. Needs the "
                       "admin role; refused to browsers on another site. The options go in "
                       "the query, or in a POST's JSON body.",
        "parameters": TRAINING_PARAMETERS,
        "responses": {
            "200": ok("Training started (answers at once)", ref("TrainingStarted")),
            "400": error("Bad epochs or promote"),
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
        f"{base}/train": {"get": train, "post": {
            **train, "requestBody": {"required": False, "content": {JSON: {"schema": {
                "type": "object", "additionalProperties": False, "properties": {
                    "epochs": TRAINING_PARAMETERS[0]["schema"],
                    "promote": TRAINING_PARAMETERS[1]["schema"]}}}}},
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
            "description": "The body is JSON (one base64 image, or a batch), or the image "
                           "file itself with an image/* or application/octet-stream "
                           "Content-Type (top_k then comes in the query).",
            "parameters": [{"name": "top_k", "in": "query", "required": False,
                            "description": "The k most probable labels, with either body "
                                           "(a JSON body may say it instead; where both "
                                           "do, they must agree). No other query "
                                           "parameter is taken.", "schema": TOP_K}],
            "requestBody": {"required": True, "content": {
                JSON: {"schema": {"oneOf": [ref("ClassifyOne"), ref("ClassifyMany")]}},
                **{media: {"schema": BINARY} for media in RAW_IMAGE_MEDIA}}},
            "responses": {
                "200": ok("One answer, or one per image for the batch form",
                          {"oneOf": [ref("Classification"), ref("Classifications")]}),
                "400": error("Bad JSON, bad base64, unreadable, blank, too small or too "
                             "large image, or a batch over the limit"),
                "413": error("Body over the size limit"),
                "415": error("Body neither JSON nor an image, or an image format other than "
                             "JPEG/PNG/BMP/TIFF"),
                "503": error("Weights not loaded yet, shutting down, or training "
                             "(seed-compatible mode)"),
                **COMMON_ERRORS,
            },
        }},
        f"{base}/samples": {"get": {
            "tags": tag, "summary": f"{cls.title}'s sample pictures",
            "responses": {"200": ok("Each sample's name, label and URLs", ref("SampleList")),
                          **COMMON_ERRORS},
        }},
        f"{base}/samples/{{sample}}": {"get": {
            "tags": tag, "summary": "One sample picture",
            "parameters": [SAMPLE_PARAMETER, FORMAT_PARAMETER],
            "responses": {"200": {"description": "The picture (its own format, or PNG)",
                                  "content": {f"image/{kind}": {"schema": BINARY}
                                              for kind in ("jpeg", "png", "bmp", "tiff")}},
                          "400": error('"format" other than png'),
                          "404": error("No such sample"), **COMMON_ERRORS},
        }},
        f"{base}/versions": {"get": {
            "tags": tag, "summary": f"Every kept version of {cls.title}, newest first",
            "responses": {"200": ok("The versions; the served one is marked",
                                    ref("VersionList")), **COMMON_ERRORS},
        }},
        f"{base}/versions/{{version}}/serve": {"post": {
            "tags": tag, "summary": "Serve this version (rollback and manual promotion)",
            "description": "Every worker answers with it within NN_RELOAD_S + 1 s.",
            "parameters": [VERSION_PARAMETER],
            "responses": {"200": ok("Now served", ref("Served")),
                          "404": error("No such version"), **COMMON_ERRORS},
        }},
        f"{base}/versions/{{version}}/onnx": {"get": {
            "tags": tag, "summary": "This version as an ONNX model",
            "description": "Input image: float32 N×C×H×W, the preprocessed image in 0..1 "
                           "(the normalisation is inside the graph); output probabilities: "
                           "N×classes. By default the graph this server computes with (for "
                           "LeNet int8: QDQ nodes around int8 weights), whose answers are "
                           "the server's; precision=float gives the float export.",
            "parameters": [VERSION_PARAMETER, PRECISION_PARAMETER],
            "responses": {"200": {"description": "The ONNX model (Content-Disposition names "
                                                 "the file)",
                                  "content": {"application/octet-stream": {"schema": {
                                      "type": "string", "format": "binary"}}}},
                          "400": error("A precision other than int8 or float, or int8 "
                                       "for a network served in float"),
                          "404": error("No such version"),
                          "500": error("The export failed"), **COMMON_ERRORS},
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
            "summary": "Readiness: this worker has weights loaded", "security": [],
            "responses": {"200": ok("Ready", {"type": "object"}),
                          "503": error("Weights are still loading"), **WRONG_HOST},
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
        "/": {"get": {
            "tags": [WEB_TAG], "summary": "The web page: classify, train, serve versions",
            "responses": {"200": ok("The page", {"type": "string"}, "text/html"),
                          **COMMON_ERRORS},
        }},
        "/static/{name}": {"get": {
            "tags": [WEB_TAG], "summary": "The page's scripts, style sheet and icon",
            "parameters": [NAME_PARAMETER],
            "responses": {"200": {"description": "The file (JavaScript, CSS or SVG)"},
                          "404": error("No such file"), **COMMON_ERRORS},
        }},
        "/docs": {"get": {
            "tags": [WEB_TAG], "summary": "Swagger UI for this document",
            "responses": {"200": ok("The page", {"type": "string"}, "text/html"),
                          **COMMON_ERRORS},
        }},
        "/docs/{asset}": {"get": {
            "tags": [WEB_TAG], "summary": "Swagger UI's own files",
            "parameters": [ASSET_PARAMETER],
            "responses": {"200": {"description": "The file (JavaScript, CSS or PNG)"},
                          "404": error("No such file"), **COMMON_ERRORS},
        }},
    }
    for cls in networks:
        paths.update(network_paths(cls))
    paths.update(inference_paths(networks))
    string = {"type": "string"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "nn-server", "version": __version__,
                 "description": "List, train and use neural networks over HTTP."},
        "security": [{"basic": []}],
        "tags": [*({"name": cls.title, "description": cls.description} for cls in networks),
                 {"name": V2_TAG, "description": "KServe V2 REST, with Triton's binary "
                                                 "tensor data and classification extensions"},
                 {"name": WEB_TAG, "description": "What a browser opens: / and /docs"}],
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
                    "accuracy": {**string, "examples": ["99.58"]},
                    "datetime": {**string, "examples": ["2026-11-27 22:35:49"]},
                    "weights_version": {"type": ["string", "null"]},
                }),
                "ClassifyOne": {"type": "object", "required": ["image"], "properties": {
                    "image": {**string, "contentEncoding": "base64"}, "top_k": TOP_K}},
                "ClassifyMany": {"type": "object", "required": ["images"], "properties": {
                    "images": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                               "items": {**string, "contentEncoding": "base64"}},
                    "top_k": TOP_K}},
                "SampleList": {"type": "object", "required": ["samples"], "properties": {
                    "samples": {"type": "array", "items": {
                        "type": "object", "required": ["name", "label", "url", "preview"],
                        "properties": {
                            "name": {**string, "examples": ["7_pen.jpg"]},
                            "label": {"type": ["string", "null"],
                                      "description": "From the index the name starts with"},
                            "url": {**string, "description": "The file as it is"},
                            "preview": {**string, "description": "A URL every browser "
                                                                 "shows (PNG for TIFF)"},
                        }}}}},
                "Version": schema_of(Version),
                "VersionList": {"type": "object", "required": ["served", "versions"],
                                "properties": {
                    "served": {"type": ["string", "null"]},
                    "previous": {"type": ["string", "null"]},
                    "versions": {"type": "array", "items": ref("Version")}}},
                "Served": {"type": "object", "required": ["served"], "properties": {
                    "served": string, "previous": {"type": ["string", "null"]}}},
                "Classification": {
                    "type": "object", "required": ["label", "index", "confidence"],
                    "properties": {
                        "label": string, "index": {"type": "integer", "minimum": 0},
                        "number": {**string, "description": "LeNet only: the digit"},
                        "confidence": {"type": "number"},
                        "probabilities": {"type": "array", "items": {"type": "number"}},
                        "top": {"type": "array", "items": {
                            "type": "object", "required": ["label", "probability"],
                            "properties": {"label": string,
                                           "probability": {"type": "number"}}}},
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
                **inference_schemas(),
            },
        },
    }
