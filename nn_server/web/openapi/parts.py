"""The pieces every part of the OpenAPI document uses: references, answers, errors, the
parameters shared by several routes, and schemas generated from the dataclasses."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from nn_server.training.command import PROMOTE
from nn_server.web.requests import MAX_EPOCHS

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
    if origin is dict:
        return {"type": "object", "additionalProperties": schema_of_type(args[1])}
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
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_EPOCHS},
     "description": "Epochs to train (default: the network's recipe)"},
    {"name": "promote", "in": "query", "required": False,
     "schema": {"enum": list(PROMOTE), "default": PROMOTE[0]},
     "description": "Serve the result only if at least as accurate (better), or always"},
]
PRECISION_PARAMETER = {
    "name": "precision", "in": "query", "required": False,
    "schema": {"enum": ["int8", "float"]},
    "description": "float: the export as trained; int8: its int8 model (versions whose int8 "
                   "form was measured within 0.1 points of float only); default: what this "
                   "server serves with"}
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

