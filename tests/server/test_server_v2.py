"""The Open Inference Protocol (KServe V2) REST API, spoken by Triton's own client
(``tritonclient.http``) to a live server on the shipped weights: server and model metadata,
readiness, every network's sample images in binary and in JSON (answers identical to
``/<net>/classify``), requested outputs and their ``binary_data``, the classification
extension, compressed bodies, and the errors, which are 4xx JSON and never 500."""

from __future__ import annotations

import base64
import gzip
import http.client
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image
from sanic import Sanic
from sanic_testing.testing import SanicTestClient
from tritonclient.http.auth import BasicAuth
from tritonclient.utils import InferenceServerException

from nn_server import __version__
from nn_server.core.config import Config
from nn_server.networks import Network, load_registry
from nn_server.store.local import LocalStore
from nn_server.web.app import create_app
from tests.conftest import AUTH_HEADER, ROOT, SHIPPED, LiveServer, basic_auth
from tests.throwaway import ENTRY

REGISTRY = load_registry()

NETWORKS = sorted(REGISTRY)
HEADER_LENGTH = "Inference-Header-Content-Length"
MB = 1024 * 1024


# -- helpers -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(shipped_server: LiveServer) -> Iterator[triton.InferenceServerClient]:
    """Triton's HTTP client with the server's Basic auth, as a user would set it up."""
    c = triton.InferenceServerClient(urlsplit(shipped_server.url).netloc,
                                     connection_timeout=60, network_timeout=60)
    c.register_plugin(BasicAuth(*shipped_server.auth))
    try:
        yield c
    finally:
        c.close()


def samples(cls: type[Network]) -> list[Path]:
    files = cls.sample_files()
    assert files, f"{cls.name} has no sample images in this checkout"
    return files


def expected_label(cls: type[Network], path: Path) -> str:
    label = cls.sample_label(path)
    assert label is not None, path
    return label


def request(server: LiveServer, method: str, path: str, body: bytes = b"",
            headers: dict[str, str] | None = None,
            auth: bool = True) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP request: (status, lower-cased headers, body)."""
    url = urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    credentials = {"Authorization": basic_auth(*server.auth)} if auth else {}
    try:
        connection.request(method, path, body=body, headers={**credentials, **(headers or {})})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def get_json(server: LiveServer, path: str, body: dict[str, Any] | None = None) -> Any:
    method, data = ("POST", json.dumps(body).encode()) if body is not None else ("GET", b"")
    status, _, answer = request(server, method, path, data,
                                {"Content-Type": "application/json"})
    assert status == 200, answer
    return json.loads(answer)


def served_version(server: LiveServer, name: str) -> str:
    version: str = get_json(server, f"/{name}/versions")["served"]
    return version


def classify(server: LiveServer, name: str, files: list[Path], **extra: Any) -> list[Any]:
    """The same images through the original route, the answers to compare with."""
    images = [base64.b64encode(p.read_bytes()).decode() for p in files]
    answer = get_json(server, f"/{name}/classify", {"images": images, **extra})
    return answer["results"]  # type: ignore[no-any-return]


def image_input(files: list[Path], binary: bool) -> triton.InferInput:
    """The input ``image``: the files' bytes in binary; in JSON their base64, as strings
    (tritonclient sends each element as text, which an image file is not)."""
    tensor = triton.InferInput("image", [len(files)], "BYTES")
    if binary:
        tensor.set_data_from_numpy(np.array([p.read_bytes() for p in files], dtype=np.object_))
    else:
        tensor.set_data_from_numpy(
            np.array([base64.b64encode(p.read_bytes()) for p in files], dtype=np.object_),
            binary_data=False)
    return tensor


def texts(array: np.ndarray) -> list[str]:
    """BYTES elements as str (binary answers come as bytes, JSON ones as str)."""
    return [x.decode() if isinstance(x, bytes) else str(x) for x in array.ravel()]


def infer_raw(server: LiveServer, name: str, header: dict[str, Any], binary: bytes = b"",
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """POST an inference request built by hand: JSON, or JSON header + binary data."""
    encoded = json.dumps(header).encode()
    extra = {HEADER_LENGTH: str(len(encoded))} if binary else {}
    return request(server, "POST", f"/v2/models/{name}/infer", encoded + binary,
                   {**extra, **(headers or {})})


def bytes_tensor(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def binary_input(data: bytes, count: int = 1) -> dict[str, Any]:
    return {"name": "image", "datatype": "BYTES", "shape": [count],
            "parameters": {"binary_data_size": len(data)}}


def json_input(*images: bytes | str) -> dict[str, Any]:
    data = [i if isinstance(i, str) else base64.b64encode(i).decode() for i in images]
    return {"name": "image", "datatype": "BYTES", "shape": [len(data)], "data": data}


def split_binary(headers: dict[str, str], body: bytes) -> tuple[dict[str, Any], bytes]:
    length = int(headers[HEADER_LENGTH.lower()])
    return json.loads(body[:length]), body[length:]


def parse_bytes(data: bytes) -> list[bytes]:
    elements, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<I", data, offset)
        elements.append(data[offset + 4:offset + 4 + length])
        offset += 4 + length
    return elements


def assert_error(status: int, headers: dict[str, str], body: bytes, expected: int,
                 fragment: str = "") -> None:
    assert status == expected, body
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert isinstance(error, str) and fragment in error, error


def encoded(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("L", (32, 32), 255).save(out, format=fmt)
    return out.getvalue()


def an_image() -> bytes:
    return samples(REGISTRY["lenet"])[0].read_bytes()


# -- metadata and health -------------------------------------------------------------------

def test_server_metadata(client: triton.InferenceServerClient) -> None:
    metadata = client.get_server_metadata()
    assert metadata["name"] == "nn-server" and metadata["version"] == __version__
    assert {"binary_tensor_data", "classification"} <= set(metadata["extensions"])


def test_health_probes_are_public_and_empty(shipped_server: LiveServer,
                                            client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    for path in ("/v2/health/live", "/v2/health/ready"):
        status, _, body = request(shipped_server, "GET", path, auth=False,
                                  headers={"Accept": "text/html"})
        assert (status, body) == (200, b""), path


@pytest.mark.parametrize("path", ["/v2", "/v2/models/lenet", "/v2/models/lenet/ready"])
def test_the_rest_needs_auth(shipped_server: LiveServer, path: str) -> None:
    status, headers, body = request(shipped_server, "GET", path, auth=False)
    assert_error(status, headers, body, 401)


def test_infer_needs_auth(shipped_server: LiveServer) -> None:
    status, headers, body = infer_raw(shipped_server, "lenet", {"inputs": []},
                                      headers={"Authorization": basic_auth("test_nn", "nope")})
    assert_error(status, headers, body, 401)


@pytest.mark.parametrize("name", NETWORKS)
def test_model_metadata_and_readiness(shipped_server: LiveServer,
                                      client: triton.InferenceServerClient, name: str) -> None:
    version = served_version(shipped_server, name)
    classes = len(REGISTRY[name].labels)
    expected = {
        "name": name, "versions": [version], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]}],
    }
    assert client.get_model_metadata(name) == expected
    assert client.get_model_metadata(name, model_version=version) == expected
    assert client.is_model_ready(name)
    assert client.is_model_ready(name, model_version=version)
    assert not client.is_model_ready(name, model_version="0" * 12)
    with pytest.raises(InferenceServerException) as caught:
        client.get_model_metadata(name, model_version="0" * 12)
    assert caught.value.status() == "404" and version in caught.value.message()


def test_a_model_without_weights_is_not_ready(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A third network with no weights yet: it and the server are not ready, its metadata
    lists no version and inference answers 503, while LeNet is ready and serves."""
    monkeypatch.setattr(Sanic, "test_mode", True)  # allows a second app of the same name
    LocalStore(tmp_path / "state", "lenet").seed(SHIPPED)
    client = SanicTestClient(create_app(Config(state_dir=tmp_path / "state",
                                               extra_networks=(ENTRY,))))
    auth = {"Authorization": AUTH_HEADER}
    statuses = {path: client.get(path, headers=auth)[1].status for path in (
        "/v2/health/live", "/v2/health/ready", "/v2/models/tiny/ready",
        "/v2/models/lenet/ready")}
    assert statuses == {"/v2/health/live": 200, "/v2/health/ready": 400,
                        "/v2/models/tiny/ready": 400, "/v2/models/lenet/ready": 200}
    _, metadata = client.get("/v2/models/tiny", headers=auth)
    assert metadata.status == 200 and metadata.json["versions"] == []
    image = json_input(an_image())
    _, answer = client.post("/v2/models/tiny/infer", json={"inputs": [image]}, headers=auth)
    assert answer.status == 503 and "Tiny" in answer.json["error"]
    _, answer = client.post("/v2/models/lenet/infer", json={"inputs": [image]}, headers=auth)
    assert answer.status == 200, answer.json


def test_unknown_model_is_404(shipped_server: LiveServer,
                              client: triton.InferenceServerClient) -> None:
    assert not client.is_model_ready("nope")
    with pytest.raises(InferenceServerException) as caught:
        client.get_model_metadata("nope")
    assert caught.value.status() == "404" and "lenet" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        client.infer("nope", [image_input(samples(REGISTRY["lenet"])[:1], True)])
    assert caught.value.status() == "404"
    status, headers, body = request(shipped_server, "GET", "/v2/models/nope/ready")
    assert_error(status, headers, body, 404, "lenet")


# -- inference -----------------------------------------------------------------------------

@pytest.mark.parametrize("binary_out", [True, False], ids=["binary-out", "json-out"])
@pytest.mark.parametrize("binary_in", [True, False], ids=["binary-in", "json-in"])
@pytest.mark.parametrize("name", NETWORKS)
def test_infer_every_sample_image(shipped_server: LiveServer,
                                  client: triton.InferenceServerClient, name: str,
                                  binary_in: bool, binary_out: bool) -> None:
    """All of a network's sample images in one request: the labels their file names give,
    and exactly the answers of /<net>/classify."""
    cls = REGISTRY[name]
    files = samples(cls)
    outputs = [triton.InferRequestedOutput("label", binary_data=binary_out),
               triton.InferRequestedOutput("probabilities", binary_data=binary_out)]
    result = client.infer(name, [image_input(files, binary_in)], outputs=outputs,
                          request_id="req-1")
    response = result.get_response()
    assert response["model_name"] == name and response["id"] == "req-1"
    assert response["model_version"] == served_version(shipped_server, name)
    for output in response["outputs"]:
        assert ("binary_data_size" in output.get("parameters", {})) is binary_out
        assert ("data" in output) is not binary_out

    labels = result.as_numpy("label")
    probabilities = result.as_numpy("probabilities")
    assert labels.shape == (len(files),)
    assert probabilities.shape == (len(files), len(cls.labels))
    assert probabilities.dtype == np.float32
    assert texts(labels) == [expected_label(cls, p) for p in files]
    answers = classify(shipped_server, name, files)
    assert texts(labels) == [a["label"] for a in answers]
    np.testing.assert_array_equal(
        probabilities, np.array([a["probabilities"] for a in answers], dtype=np.float32))


@pytest.mark.parametrize("name", NETWORKS)
def test_tritonclient_defaults_are_binary_both_ways(
        client: triton.InferenceServerClient, name: str) -> None:
    """No outputs named: tritonclient asks for every output in binary (binary_data_output)."""
    cls = REGISTRY[name]
    files = samples(cls)[:3]
    result = client.infer(name, [image_input(files, True)])
    outputs = result.get_response()["outputs"]
    assert [o["name"] for o in outputs] == ["label", "probabilities"]
    assert all("binary_data_size" in o["parameters"] for o in outputs)
    assert texts(result.as_numpy("label")) == [expected_label(cls, p) for p in files]


@pytest.mark.parametrize("wanted", [
    [("label", True)], [("label", False)], [("probabilities", True)],
    [("probabilities", False), ("label", True)], [("probabilities", True), ("label", False)],
], ids=str)
def test_requested_outputs_and_their_binary_data(
        client: triton.InferenceServerClient, wanted: list[tuple[str, bool]]) -> None:
    files = samples(REGISTRY["lenet"])[:4]
    outputs = [triton.InferRequestedOutput(n, binary_data=b) for n, b in wanted]
    result = client.infer("lenet", [image_input(files, True)], outputs=outputs)
    answered = result.get_response()["outputs"]
    assert [o["name"] for o in answered] == [n for n, _ in wanted]  # in the order asked
    for output, (name, binary) in zip(answered, wanted, strict=True):
        assert ("binary_data_size" in output.get("parameters", {})) is binary, output
        assert result.as_numpy(name).shape[0] == len(files)


def test_the_wire_format_by_hand(shipped_server: LiveServer) -> None:
    """Without tritonclient: binary_data_output, the header length, the binary layout."""
    cls = REGISTRY["lenet"]
    files = samples(cls)[:3]
    data = bytes_tensor(*(p.read_bytes() for p in files))
    status, headers, body = infer_raw(
        shipped_server, "lenet",
        {"inputs": [binary_input(data, 3)], "parameters": {"binary_data_output": True}}, data)
    assert status == 200, body
    assert headers["content-type"] == "application/octet-stream"
    header, binary = split_binary(headers, body)
    label, probabilities = header["outputs"]
    assert (label["datatype"], label["shape"]) == ("BYTES", [3])
    assert (probabilities["datatype"], probabilities["shape"]) == ("FP32", [3, 10])
    sizes = [label["parameters"]["binary_data_size"],
             probabilities["parameters"]["binary_data_size"]]
    assert sizes[1] == 3 * 10 * 4 and sum(sizes) == len(binary)
    assert parse_bytes(binary[:sizes[0]]) == [expected_label(cls, p).encode() for p in files]
    rows = np.frombuffer(binary[sizes[0]:], dtype="<f4").reshape(3, 10)
    assert [cls.labels[i] for i in rows.argmax(axis=1)] == [expected_label(cls, p)
                                                             for p in files]

    # One output asked in JSON overrides binary_data_output; all JSON: no header length.
    status, headers, body = infer_raw(
        shipped_server, "lenet",
        {"inputs": [json_input(files[0].read_bytes())],
         "parameters": {"binary_data_output": True},
         "outputs": [{"name": "label", "parameters": {"binary_data": False}}]})
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert HEADER_LENGTH.lower() not in headers
    assert json.loads(body)["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [1],
         "data": [expected_label(cls, files[0])]}]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_classification_extension(shipped_server: LiveServer,
                                  client: triton.InferenceServerClient, binary: bool) -> None:
    """probabilities with class_count=3: the top three as "probability:index:label", the
    same three /<net>/classify answers with top_k=3."""
    files = samples(REGISTRY["lenet"])[:5]
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=3)]
    result = client.infer("lenet", [image_input(files, True)], outputs=outputs)
    top = result.as_numpy("probabilities")
    assert top.shape == (len(files), 3)
    answers = classify(shipped_server, "lenet", files, top_k=3)
    for row, answer in zip(top, answers, strict=True):
        parsed = [t.split(":", 2) for t in texts(row)]
        assert [(label, float(p)) for p, _, label in parsed] == \
            [(t["label"], t["probability"]) for t in answer["top"]]
        assert all(REGISTRY["lenet"].labels[int(i)] == label for _, i, label in parsed)
        assert int(parsed[0][1]) == answer["index"]


def test_a_named_version(shipped_server: LiveServer,
                         client: triton.InferenceServerClient) -> None:
    version = served_version(shipped_server, "lenet")
    files = samples(REGISTRY["lenet"])[:2]
    result = client.infer("lenet", [image_input(files, True)], model_version=version)
    assert result.get_response()["model_version"] == version
    with pytest.raises(InferenceServerException) as caught:
        client.infer("lenet", [image_input(files, True)], model_version="0" * 12)
    assert caught.value.status() == "404" and "not served" in caught.value.message()


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(client: triton.InferenceServerClient, algorithm: str) -> None:
    cls = REGISTRY["lenet"]
    files = samples(cls)[:4]
    result = client.infer("lenet", [image_input(files, True)],
                          request_compression_algorithm=algorithm)
    assert texts(result.as_numpy("label")) == [expected_label(cls, p) for p in files]


def test_inference_goes_through_the_micro_batcher(
        shipped_server: LiveServer, client: triton.InferenceServerClient) -> None:
    """The worker's batch counters grow by the request's images (dev mode: one worker)."""
    files = samples(REGISTRY["lenet"])[:6]
    before = get_json(shipped_server, "/ready")["batching"]["lenet"]["items"]
    client.infer("lenet", [image_input(files, True)])
    after = get_json(shipped_server, "/ready")["batching"]["lenet"]["items"]
    assert after - before == len(files)


def test_production_mode(prod_server: LiveServer) -> None:
    """Several workers: each answers the probes and inference on the served weights."""
    files = samples(REGISTRY["lenet"])[:3]
    version = served_version(prod_server, "lenet")
    for _ in range(4):  # a client, so a connection, each: the workers share the socket
        with triton.InferenceServerClient(urlsplit(prod_server.url).netloc,
                                          network_timeout=60) as c:
            c.register_plugin(BasicAuth(*prod_server.auth))
            assert c.is_server_ready() and c.is_model_ready("lenet")
            result = c.infer("lenet", [image_input(files, True)])
            assert result.get_response()["model_version"] == version
            assert result.as_numpy("probabilities").shape == (3, 10)


def test_the_readme_example(shipped_server: LiveServer) -> None:
    """README's tritonclient example, run as written against this server."""
    section = (ROOT / "README.md").read_text().split("### Open Inference Protocol")[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    code = match.group(1).replace("127.0.0.1:5000", urlsplit(shipped_server.url).netloc)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["[b'7' b'3']", "(2, 10)"], done.stdout
    assert lines[2].startswith("['0.") and ":7:7'" in lines[2], done.stdout


# -- errors --------------------------------------------------------------------------------

def test_a_bad_image_fails_the_request_naming_it(
        shipped_server: LiveServer, client: triton.InferenceServerClient) -> None:
    """The protocol has no per-element errors: 400, and the message names each bad one."""
    image = an_image()
    tensor = triton.InferInput("image", [3], "BYTES")
    tensor.set_data_from_numpy(np.array([image, b"not an image", image], dtype=np.object_))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("lenet", [tensor])
    assert caught.value.status() == "400"
    assert '1 of 3 images' in caught.value.message()
    assert '"image"[1]' in caught.value.message()
    status, headers, body = infer_raw(shipped_server, "lenet",
                                      {"inputs": [json_input(encoded("GIF"))]})
    assert_error(status, headers, body, 415, '"image"[0]')


# The full tables of bad requests are unit tests of oip.parse_request
# (tests/test_request_parsing.py); these few go through a live server end to end.
BAD_JSON_LIVE = {
    "no inputs": ({}, "inputs"),
    "FP32": ({"inputs": [{**json_input(b"x"), "datatype": "FP32"}]}, "BYTES"),
    "not an image": ({"inputs": [json_input(b"hello")]}, '"image"[0]'),
}


@pytest.mark.parametrize(("body", "fragment"), BAD_JSON_LIVE.values(), ids=BAD_JSON_LIVE.keys())
def test_bad_json_requests_are_400(shipped_server: LiveServer, body: dict[str, Any],
                                   fragment: str) -> None:
    status, headers, answer = infer_raw(shipped_server, "lenet", body)
    assert_error(status, headers, answer, 400, fragment)


def test_a_bad_binary_request_is_400(shipped_server: LiveServer) -> None:
    data = bytes_tensor(an_image())
    status, headers, answer = infer_raw(shipped_server, "lenet",
                                        {"inputs": [binary_input(data + b"xx")]}, data)
    assert_error(status, headers, answer, 400, "binary_data_size")


BAD_BODIES = [
    ("not JSON", b"{", {}, 400, "JSON"),
    ("header length past the body", b"{}", {HEADER_LENGTH: "3"}, 400, "only 2 bytes"),
    ("a form", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "JSON"),
    ("brotli", b"{}", {"Content-Encoding": "br"}, 415, "Content-Encoding"),
    ("bad gzip", b"not gzip", {"Content-Encoding": "gzip"}, 400, "gzip"),
    ("truncated gzip", gzip.compress(b'{"inputs": []}')[:12], {"Content-Encoding": "gzip"},
     400, "truncated"),
]


@pytest.mark.parametrize(("case", "body", "headers", "expected", "fragment"), BAD_BODIES,
                         ids=[c[0] for c in BAD_BODIES])
def test_bad_bodies(shipped_server: LiveServer, case: str, body: bytes,
                    headers: dict[str, str], expected: int, fragment: str) -> None:
    status, answer_headers, answer = request(shipped_server, "POST", "/v2/models/lenet/infer",
                                             body, headers)
    assert_error(status, answer_headers, answer, expected, fragment)


def test_accept_is_checked_against_the_answer(shipped_server: LiveServer) -> None:
    one = json_input(an_image())
    status, headers, body = infer_raw(
        shipped_server, "lenet", {"inputs": [one], "parameters": {"binary_data_output": True}},
        headers={"Accept": "application/json"})
    assert_error(status, headers, body, 406, "octet-stream")
    status, headers, _ = infer_raw(shipped_server, "lenet", {"inputs": [one]},
                                   headers={"Accept": "application/json"})
    assert status == 200 and headers["content-type"] == "application/json"


def test_bodies_over_the_limit_are_413(shipped_server: LiveServer) -> None:
    """Refused from the declared length before a byte is read, and a small gzip body that
    inflates past the limit is cut off there."""
    url = urlsplit(shipped_server.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as raw:
        raw.sendall(f"POST /v2/models/lenet/infer HTTP/1.1\r\nHost: {url.netloc}\r\n"
                    f"Authorization: {basic_auth(*shipped_server.auth)}\r\n"
                    f"Content-Length: {17 * MB}\r\n\r\n".encode())
        head = raw.recv(65536).decode(errors="replace")
    assert head.startswith("HTTP/1.1 413"), head
    bomb = zlib.compress(b'{"inputs": [' + b" " * (17 * MB) + b"]}")
    status, headers, body = request(shipped_server, "POST", "/v2/models/lenet/infer", bomb,
                                    {"Content-Encoding": "deflate"})
    assert_error(status, headers, body, 413, "limit")
