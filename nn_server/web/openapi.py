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
from nn_server.store.base import Version
from nn_server.store.status import TrainingStatus
from nn_server.web import oip

JSON = "application/json"
WEB_TAG = "Web page"
TOP_K = {"type": "integer", "minimum": 1,
         "description": "Add the k most probable labels as top (1 to the number of labels)"}


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
    if origin in (tuple, list):
        return {"type": "array", "items": schema_of_type(args[0])}
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


TRAINING_PARAMETERS = [
    {"name": "epochs", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 100},
     "description": "Epochs to train (default: the network's recipe)"},
    {"name": "promote", "in": "query", "required": False,
     "schema": {"enum": ["better", "always"], "default": "better"},
     "description": "Serve the result only if at least as accurate (better), or always"},
]
PRECISION_PARAMETER = {
    "name": "precision", "in": "query", "required": False,
    "schema": {"enum": ["int8", "float"]},
    "description": "float: the export as trained; int8: its quantized graph (networks served "
                   "in int8 only); default: what this server serves with"}
VERSION_PARAMETER = {"name": "version", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": "^[0-9a-f]{12}$"}}
SAMPLE_PARAMETER = {"name": "sample", "in": "path", "required": True,
                    "schema": {"type": "string"}, "examples": {"digit": {"value": "7_pen.jpg"}},
                    "description": "A name from the samples list"}
FORMAT_PARAMETER = {"name": "format", "in": "query", "required": False,
                    "schema": {"enum": ["png"]},
                    "description": "png: converted to PNG (what the list's preview uses for "
                                   "TIFF, which browsers do not show)"}
NAME_PARAMETER = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
ASSET_PARAMETER = {"name": "asset", "in": "path", "required": True,
                   "schema": {"type": "string"}}
BINARY = {"type": "string", "format": "binary"}
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
        "description": "The result is served only if it is at least as accurate as the "
                       "served weights on the same test images (promote=better), or anyway "
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


V2_TAG = "Open Inference Protocol"
V2_TAGS = [V2_TAG]
EMPTY_OK = {"description": "Yes (empty body)"}
EMPTY_NO = {"description": "No (empty body)"}


def inference_paths(networks: list[type[Network]]) -> dict[str, Any]:
    """The Open Inference Protocol (KServe V2) routes, ``nn_server.web.routes.inference``."""
    model = {"name": "model", "in": "path", "required": True,
             "schema": {"enum": [cls.name for cls in networks]}}
    version = {**VERSION_PARAMETER,
               "description": "The served version (the only one that may be named)"}
    unknown = error("Unknown model, or a version that is not served")
    infer = {"post": {
        "tags": V2_TAGS, "summary": "Classify N images (input image, BYTES [N])",
        "description": "JSON, or with the binary tensor data extension a JSON header of "
                       "Inference-Header-Content-Length bytes followed by the binary tensors "
                       "(a BYTES element: 4-byte little-endian length, then the file). In "
                       "JSON an image is the base64 of its file. Outputs: label (BYTES [N]) "
                       "and probabilities (FP32 [N, classes]; with parameters.classification "
                       "= k, BYTES [N, k] \"probability:index:label\"), in binary when asked "
                       "(binary_data, binary_data_output). One unreadable image fails the "
                       "request (400, or 415 for its format) and the message names it. "
                       "Headers: Inference-Header-Content-Length (the JSON header's length, "
                       "when binary tensors follow it) and Content-Encoding (gzip, deflate) "
                       "describe the binary form; a JSON body sends neither.",
        "requestBody": {"required": True, "content": {
            JSON: {"schema": ref("InferenceRequest")},
            oip.BINARY_MEDIA: {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {
            "200": {"description": "The outputs; with binary ones, a JSON header of "
                                   "Inference-Header-Content-Length bytes, then their data",
                    "content": {JSON: {"schema": ref("InferenceResponse")},
                                oip.BINARY_MEDIA: {"schema": {"type": "string",
                                                              "format": "binary"}}}},
            "400": error("Malformed request: JSON, header length, shape, datatype, binary "
                         "data, base64, unknown input or output, or an unreadable image"),
            "404": unknown,
            "406": error("Accept excludes what the answer is (JSON, or octet-stream)"),
            "413": error("Body (or the body inflated) over the size limit"),
            "415": error("Content-Type or Content-Encoding we do not read, or an image "
                         "format other than JPEG/PNG/BMP/TIFF"),
            "503": error("Weights not loaded yet, the named version still loading, or "
                         "shutting down"),
            **COMMON_ERRORS,
        },
    }}
    metadata = {"get": {
        "tags": V2_TAGS, "summary": "Model metadata: input, outputs, served version",
        "responses": {"200": ok("The model", ref("ModelMetadata")), "404": unknown,
                      "503": error("The named version is still loading"), **COMMON_ERRORS},
    }}
    ready = {"get": {
        "tags": V2_TAGS, "summary": "Whether the model (this version) is ready",
        "responses": {"200": EMPTY_OK, "400": EMPTY_NO,
                      "404": error("Unknown model"), **COMMON_ERRORS},
    }}
    def taking(path_parameters: list[dict[str, Any]], item: dict[str, Any]) -> dict[str, Any]:
        return {method: {**op, "parameters": [*path_parameters, *op.get("parameters", [])]}
                for method, op in item.items()}

    with_model, with_version = [model], [model, version]
    return {
        "/v2": {"get": {
            "tags": V2_TAGS, "summary": "Server metadata",
            "responses": {"200": ok("Name, version, extensions", ref("ServerMetadata")),
                          **COMMON_ERRORS},
        }},
        "/v2/health/live": {"get": {
            "tags": V2_TAGS, "summary": "Liveness (no auth)", "security": [],
            "responses": {"200": EMPTY_OK},
        }},
        "/v2/health/ready": {"get": {
            "tags": V2_TAGS, "summary": "Readiness: every model ready (no auth)",
            "security": [], "responses": {"200": EMPTY_OK, "400": EMPTY_NO},
        }},
        "/v2/models/{model}": taking(with_model, metadata),
        "/v2/models/{model}/ready": taking(with_model, ready),
        "/v2/models/{model}/infer": taking(with_model, infer),
        "/v2/models/{model}/versions/{version}": taking(with_version, metadata),
        "/v2/models/{model}/versions/{version}/ready": taking(with_version, ready),
        "/v2/models/{model}/versions/{version}/infer": taking(with_version, infer),
    }


def inference_schemas() -> dict[str, Any]:
    string = {"type": "string"}
    parameters = {"type": "object", "additionalProperties": {
        "type": ["string", "number", "boolean"]}}
    shape = {"type": "array", "items": {"type": "integer"}}
    tensor: dict[str, Any] = {
        "type": "object", "required": ["name", "datatype", "shape"],
        "properties": {"name": string, "datatype": string, "shape": shape}}
    return {
        "ServerMetadata": {"type": "object", "required": ["name", "version", "extensions"],
                           "properties": {"name": string, "version": string,
                                          "extensions": {"type": "array", "items": string}}},
        "MetadataTensor": tensor,
        "ModelMetadata": {
            "type": "object", "required": ["name", "platform", "inputs", "outputs"],
            "properties": {"name": string, "versions": {"type": "array", "items": string},
                           "platform": string,
                           "inputs": {"type": "array", "items": ref("MetadataTensor")},
                           "outputs": {"type": "array", "items": ref("MetadataTensor")}}},
        "InferenceRequest": {
            "type": "object", "required": ["inputs"], "properties": {
                "id": string,
                "parameters": {**parameters, "properties": {
                    "binary_data_output": {"type": "boolean"}}},
                "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                    **tensor, "properties": {
                        **tensor["properties"],
                        "name": {"const": oip.INPUT}, "datatype": {"const": "BYTES"},
                        "parameters": {**parameters, "properties": {
                            "binary_data_size": {"type": "integer", "minimum": 0}}},
                        "data": {"type": "array", "items": {**string,
                                                            "contentEncoding": "base64"}}}}},
                "outputs": {"type": "array", "items": {
                    "type": "object", "required": ["name"], "properties": {
                        "name": {"enum": list(oip.OUTPUTS)},
                        "parameters": {**parameters, "properties": {
                            "binary_data": {"type": "boolean"},
                            "classification": {"type": "integer", "minimum": 1}}}}}},
            }},
        "InferenceResponse": {
            "type": "object", "required": ["model_name", "outputs"], "properties": {
                "model_name": string, "model_version": string, "id": string,
                "outputs": {"type": "array", "items": {
                    **tensor, "properties": {
                        **tensor["properties"],
                        "parameters": {**parameters, "properties": {
                            "binary_data_size": {"type": "integer", "minimum": 0}}},
                        "data": {"type": "array",
                                 "items": {"type": ["string", "number"]}}}}},
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
                    "images": {"type": "array", "minItems": 1, "maxItems": 1024,
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
