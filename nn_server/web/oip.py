"""The Open Inference Protocol (KServe V2) for our networks: reading an inference request and
writing its answer, with no HTTP in sight (``nn_server.web.routes.inference`` serves them).

Every network has one input and two outputs:

    image          BYTES [N]           each element an encoded image file (JPEG/PNG/BMP/TIFF)
    label          BYTES [N]           the most probable label of each image
    probabilities  FP32  [N, classes]  every class's probability, in the labels' order

A request body is a JSON object, or, with Triton's binary tensor data extension (what
``tritonclient`` sends by default), a JSON header of ``Inference-Header-Content-Length``
bytes followed by the tensors that declare a ``binary_data_size``, in input order. A BYTES
tensor in binary is its elements one after another, each a 4-byte little-endian length and
that many bytes; in JSON an element is a string, so an image travels as the base64 of its
file (as ``"image"`` does for ``/<net>/classify``). Outputs come back in binary when asked
(an output's ``binary_data`` parameter, or the request's ``binary_data_output``), else in
JSON. Triton's classification extension applies to ``probabilities``:
``"classification": k`` answers the k most probable classes of each image as BYTES [N, k],
``"<probability>:<index>:<label>"``, most probable first.

Every malformed header, shape, datatype, length or element is an ``InvalidRequest`` (400)
whose message names the part at fault.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sanic.response import json_dumps

from nn_server.networks import Network, Prediction
from nn_server.web.body import decode_image, parse_object
from nn_server.web.errors import InvalidRequest

INPUT = "image"
LABEL = "label"
PROBABILITIES = "probabilities"
OUTPUTS = (LABEL, PROBABILITIES)
HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_MEDIA = "application/octet-stream"
JSON_MEDIA = "application/json"
PLATFORMS = {"onnx": "onnxruntime_onnx", "mxnet": "mxnet"}
"""What runs a model (``NN_RUNTIME``), in Triton's platform names."""
EXTENSIONS = ("binary_tensor_data", "classification")
"""What ``GET /v2`` lists: the Triton extensions these routes implement."""
ELEMENT_LENGTH = struct.Struct("<I")
EXAMPLE = 'such as {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], ' \
          '"data": ["<base64>"]}]}'


@dataclass(frozen=True)
class RequestedOutput:
    """One output the client wants, and how: binary or JSON, tensor or top-k classes."""

    name: str
    binary: bool
    classification: int | None = None


@dataclass(frozen=True)
class InferRequest:
    """A parsed inference request: the encoded images, the outputs wanted, the id."""

    images: list[bytes]
    outputs: tuple[RequestedOutput, ...]
    id: str | None = None


def model_metadata(cls: type[Network], version: str | None, runtime: str) -> dict[str, Any]:
    """``GET /v2/models/<net>``: the served version (the only one a client may name)."""
    return {
        "name": cls.name, "versions": [version] if version else [],
        "platform": PLATFORMS[runtime],
        "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": LABEL, "datatype": "BYTES", "shape": [-1]},
            {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, len(cls.labels)]},
        ],
    }


# -- the request ---------------------------------------------------------------------------

def parse_request(body: bytes, header_length: str | None, *, classes: int,
                  max_batch: int) -> InferRequest:
    """The request in ``body``; ``header_length`` is its ``Inference-Header-Content-Length``
    (None: the whole body is JSON)."""
    header, binary = split_body(body, header_length)
    request = parse_object(header, EXAMPLE)
    images, used = parse_inputs(request.get("inputs"), binary, max_batch)
    if used != len(binary):
        raise InvalidRequest(
            f"{len(binary) - used} bytes follow the JSON header beyond the inputs' "
            f"binary_data_size ({used} bytes)")
    parameters = parameters_of(request, "the request")
    default = flag(parameters, "binary_data_output", "the request", False)
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidRequest(f'"id" must be a string, not {type(request_id).__name__}')
    outputs = parse_outputs(request.get("outputs"), default, classes)
    return InferRequest(images, outputs, request_id)


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON header and the binary data after it."""
    if header_length is None:
        return body, memoryview(b"")
    declared = header_length.strip()
    if not declared.isdigit() or int(declared) == 0:
        raise InvalidRequest(
            f"{HEADER_LENGTH} must be the JSON header's length in bytes, not {header_length!r}")
    length = int(declared)
    if length > len(body):
        raise InvalidRequest(
            f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes")
    return body[:length], memoryview(body)[length:]


def parse_inputs(inputs: object, binary: memoryview, max_batch: int) -> tuple[list[bytes], int]:
    """The images of the one input, and how many bytes of ``binary`` they took."""
    if not isinstance(inputs, list) or not inputs:
        raise InvalidRequest(f'the request needs "inputs" with the input "{INPUT}", {EXAMPLE}')
    images: list[bytes] | None = None
    used = 0
    for tensor in inputs:
        if not isinstance(tensor, dict):
            raise InvalidRequest(f'each of "inputs" must be an object, {EXAMPLE}')
        name = tensor.get("name")
        if name != INPUT:
            raise InvalidRequest(f'unknown input {name!r}: the only input is "{INPUT}"')
        if images is not None:
            raise InvalidRequest(f'the input "{INPUT}" is given more than once')
        count = batch_size(tensor, max_batch)
        parameters = parameters_of(tensor, f'the input "{INPUT}"')
        if any(key.startswith("shared_memory") for key in parameters):
            raise InvalidRequest("shared memory is not supported: send the data in the body")
        size = parameters.get("binary_data_size")
        if size is None:
            images = json_elements(tensor.get("data"), count)
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidRequest(f'"binary_data_size" must be a whole number of bytes, '
                                 f'not {size!r}')
        if "data" in tensor:
            raise InvalidRequest(f'the input "{INPUT}" has both "data" and "binary_data_size"')
        if used + size > len(binary):
            raise InvalidRequest(
                f'the input "{INPUT}" has binary_data_size {size} but only '
                f"{len(binary) - used} bytes follow the JSON header")
        images = binary_elements(binary[used:used + size], count)
        used += size
    assert images is not None  # the loop ran at least once, and raised or set it
    return images, used


def batch_size(tensor: dict[str, Any], max_batch: int) -> int:
    datatype = tensor.get("datatype")
    if datatype != "BYTES":
        raise InvalidRequest(f'the input "{INPUT}" must have datatype "BYTES" (encoded image '
                             f"files), not {datatype!r}")
    shape = tensor.get("shape")
    if not (isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int)
            and not isinstance(shape[0], bool)):
        raise InvalidRequest(f'the input "{INPUT}" must have shape [N], N images; '
                             f"not {shape!r}")
    count: int = shape[0]
    if not 1 <= count <= max_batch:
        raise InvalidRequest(f'the input "{INPUT}" must hold from 1 to {max_batch} images, '
                             f"not {count}")
    return count


def json_elements(data: object, count: int) -> list[bytes]:
    """BYTES elements given in JSON: base64 strings of the image files."""
    if not isinstance(data, list):
        raise InvalidRequest(f'the input "{INPUT}" needs "data" (a list of base64 strings) '
                             'or parameters.binary_data_size')
    if len(data) != count:
        raise InvalidRequest(f'the input "{INPUT}" has shape [{count}] but {len(data)} '
                             "elements in data")
    return [decode_image(item, f'"{INPUT}"[{i}]') for i, item in enumerate(data)]


def binary_elements(data: memoryview, count: int) -> list[bytes]:
    """BYTES elements in binary: each a 4-byte little-endian length, then its bytes."""
    elements: list[bytes] = []
    offset, end = 0, len(data)
    for i in range(count):
        if offset + ELEMENT_LENGTH.size > end:
            raise InvalidRequest(f'the binary data of "{INPUT}" holds {i} elements but its '
                                 f"shape says {count}")
        (length,) = ELEMENT_LENGTH.unpack_from(data, offset)
        offset += ELEMENT_LENGTH.size
        if offset + length > end:
            raise InvalidRequest(f'"{INPUT}"[{i}] claims {length} bytes but only '
                                 f"{end - offset} remain in the binary data")
        if length == 0:
            raise InvalidRequest(f'"{INPUT}"[{i}] is empty')
        elements.append(bytes(data[offset:offset + length]))
        offset += length
    if offset != end:
        raise InvalidRequest(f'the binary data of "{INPUT}" has {end - offset} bytes past its '
                             f"{count} elements")
    return elements


def parse_outputs(outputs: object, default: bool, classes: int) -> tuple[RequestedOutput, ...]:
    """What ``"outputs"`` asks for; none (or an empty list) means every output."""
    if outputs is None or outputs == []:
        return tuple(RequestedOutput(name, default) for name in OUTPUTS)
    if not isinstance(outputs, list):
        raise InvalidRequest('"outputs" must be a list of {"name": ...} objects')
    wanted: list[RequestedOutput] = []
    for output in outputs:
        name = output.get("name") if isinstance(output, dict) else None
        if name not in OUTPUTS:
            raise InvalidRequest(f"unknown output {name!r}: the outputs are "
                                 f'"{LABEL}" and "{PROBABILITIES}"')
        if any(w.name == name for w in wanted):
            raise InvalidRequest(f'the output "{name}" is requested more than once')
        parameters = parameters_of(output, f'the output "{name}"')
        if any(key.startswith("shared_memory") for key in parameters):
            raise InvalidRequest("shared memory is not supported: outputs come in the body")
        top = parameters.get("classification")
        if top is not None:
            if name != PROBABILITIES:
                raise InvalidRequest(f'"classification" applies to "{PROBABILITIES}" only')
            if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= classes:
                raise InvalidRequest(f'"classification" must be a whole number from 1 to '
                                     f"{classes}, not {top!r}")
        binary = flag(parameters, "binary_data", f'the output "{name}"', default)
        wanted.append(RequestedOutput(name, binary, top))
    return tuple(wanted)


def parameters_of(item: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = item.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidRequest(f'"parameters" of {where} must be an object')
    return parameters


def flag(parameters: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        raise InvalidRequest(f'"{key}" of {where} must be true or false, not {value!r}')
    return value


# -- the response --------------------------------------------------------------------------

def encode_response(cls: type[Network], version: str, request: InferRequest,
                    predictions: Sequence[Prediction]) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it
    (None: the body is all JSON)."""
    outputs: list[dict[str, Any]] = []
    binaries: list[bytes] = []
    count = len(predictions)
    for wanted in request.outputs:
        datatype, shape, data = output_tensor(cls, wanted, predictions)
        tensor: dict[str, Any] = {"name": wanted.name, "datatype": datatype,
                                  "shape": [count, *shape]}
        if wanted.binary:
            encoded = encode_binary(datatype, data)
            tensor["parameters"] = {"binary_data_size": len(encoded)}
            binaries.append(encoded)
        else:
            tensor["data"] = data
        outputs.append(tensor)
    answer: dict[str, Any] = {"model_name": cls.name, "model_version": version}
    if request.id is not None:
        answer["id"] = request.id
    answer["outputs"] = outputs
    header = json_dumps(answer).encode()
    if not binaries:
        return header, None
    return b"".join([header, *binaries]), len(header)


def output_tensor(cls: type[Network], wanted: RequestedOutput,
                  predictions: Sequence[Prediction]) -> tuple[str, list[int], Any]:
    """An output's datatype, shape past the batch dimension, and elements: a list of
    strings for BYTES, the probabilities as given (rounded as /classify rounds them)
    for FP32."""
    if wanted.name == LABEL:
        return "BYTES", [], [p.label for p in predictions]
    if wanted.classification is None:
        if not wanted.binary:  # JSON: the very numbers /<net>/classify answers
            return "FP32", [len(cls.labels)], list(
                chain.from_iterable(p.probabilities for p in predictions))
        return "FP32", [len(cls.labels)], probabilities_of(predictions)
    top = wanted.classification
    # Ranked as /<net>/classify ranks its top_k: the probabilities as answered, ties in
    # label order.
    scores = np.array([p.probabilities for p in predictions])
    ranked = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    classes = [f"{p.probabilities[i]}:{i}:{cls.labels[i]}"
               for p, row in zip(predictions, ranked.tolist(), strict=True) for i in row]
    return "BYTES", [top], classes


def probabilities_of(predictions: Sequence[Prediction]) -> NDArray[np.float32]:
    return np.array([p.probabilities for p in predictions], dtype=np.float32)


def encode_binary(datatype: str, data: Any) -> bytes:
    if datatype == "FP32":
        return np.ascontiguousarray(data, dtype="<f4").tobytes()  # type: ignore[no-any-return]
    return serialize_bytes(data)


def serialize_bytes(elements: Sequence[str | bytes]) -> bytes:
    """A BYTES tensor in binary: each element's 4-byte little-endian length, then it."""
    encoded = [e.encode() if isinstance(e, str) else e for e in elements]
    return b"".join(chain.from_iterable((ELEMENT_LENGTH.pack(len(e)), e) for e in encoded))
