"""The Open Inference Protocol's part of the OpenAPI document (``web.routes.inference``)."""

from __future__ import annotations

from typing import Any

from nn_server.networks import Network
from nn_server.web import oip
from nn_server.web.openapi.parts import COMMON_ERRORS, JSON, VERSION_PARAMETER, error, ok, ref

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

