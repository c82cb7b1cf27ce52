"""The SDK's pure parts, with no server: models, error mapping, image inputs, settings."""

from __future__ import annotations

import datetime as dt
import io
import ssl
from pathlib import Path

import pytest
from PIL import Image

import nn_sdk
from nn_sdk import (
    APIError,
    AuthenticationError,
    BadRequest,
    Classification,
    InvalidArgument,
    LocalFileError,
    NetworkInfo,
    NetworkSummary,
    NNClient,
    NNError,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    ServerError,
    Timeout,
    TrainingInProgress,
    TrainingStarted,
    TrainingStatus,
    UnsupportedMedia,
)
from nn_sdk._config import parse_base_url, ssl_setting
from nn_sdk._exceptions import error_for_status
from nn_sdk._images import image_bytes
from nn_sdk._models import networks_from_json

IMAGES = Path(__file__).resolve().parents[2] / "images"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def test_public_names_are_sorted_and_exported() -> None:
    assert nn_sdk.__all__ == sorted(nn_sdk.__all__, key=lambda n: (not n.isupper(), n))  # ruff
    for name in nn_sdk.__all__:
        assert hasattr(nn_sdk, name)


def test_every_error_is_an_nnerror() -> None:
    for name in nn_sdk.__all__:
        value = getattr(nn_sdk, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, NNError), name


# -- models -------------------------------------------------------------------------------


def test_network_list_prefers_structured_entries() -> None:
    data = {"text": ["LeNet url:/lenet"],
            "networks": [{"name": "lenet", "title": "LeNet", "url": "/lenet"}]}
    assert networks_from_json(data) == (NetworkSummary("lenet", "LeNet", "/lenet"),)


def test_network_list_reads_the_seeds_lines() -> None:
    data = {"text": ["LeNet url:/lenet", "Other Net url:/other"]}
    assert networks_from_json(data) == (
        NetworkSummary("lenet", "LeNet", "/lenet"),
        NetworkSummary("other", "Other Net", "/other"),
    )


def test_network_list_without_either_key_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        networks_from_json({"something": 1})


def test_about_and_train_answers() -> None:
    info = NetworkInfo.from_json({"text": "digits", "labels": list("0123456789")}, "lenet")
    assert info == NetworkInfo("lenet", "lenet", "digits", tuple("0123456789"))
    started = TrainingStarted.from_json({"text": "Training of LeNet started."}, "lenet")
    assert started.state == "training" and started.network == "lenet"


def test_status_reads_seed_and_current_answers() -> None:
    seed = TrainingStatus.from_json({"accuracy": "99.32", "datetime": "2018-11-21 17:39:08"})
    assert seed.accuracy == pytest.approx(99.32)
    assert seed.datetime == dt.datetime(2018, 11, 21, 17, 39, 8)
    assert seed.state == "idle" and seed.progress is None and not seed.is_training
    live = TrainingStatus.from_json({
        "accuracy": "99.52", "datetime": "2026-11-27 22:40:08", "state": "training",
        "progress": {"epoch": 2, "epochs": 8, "batch": 100, "batches": 469, "loss": 0.05,
                     "accuracy": 0.98, "elapsed_s": 31.2, "eta_s": 120.5, "fraction": 0.17},
        "error": None, "weights_version": "3f2a9c1b7d0e",
    })
    assert live.is_training and live.weights_version == "3f2a9c1b7d0e"
    assert live.progress is not None
    assert (live.progress.epoch, live.progress.epochs, live.progress.fraction) == (2, 8, 0.17)


def test_status_without_a_training_record() -> None:
    status = TrainingStatus.from_json({"accuracy": None, "datetime": "", "state": "failed",
                                       "error": "out of memory"})
    assert (status.accuracy, status.datetime, status.error) == (None, None, "out of memory")


def test_classification_keeps_the_label_a_string() -> None:
    result = Classification.from_json({"number": "7", "confidence": 0.9,
                                       "probabilities": [0.1] * 10, "weights_version": "ab"})
    assert result.number == result.label == "7" and len(result.probabilities) == 10
    assert result.index is None  # a seed server says only "number"
    assert "probabilities" not in repr(result)  # print() stays one short line
    with pytest.raises(ProtocolError):
        Classification.from_json({"number": 7})
    with pytest.raises(ProtocolError):
        Classification.from_json({"number": "7", "confidence": "very"})


def test_classification_of_any_network_has_label_and_index() -> None:
    result = Classification.from_json({"label": "Coat", "index": 4, "confidence": 0.8})
    assert (result.label, result.index, result.number) == ("Coat", 4, None)
    lenet = Classification.from_json({"number": "3", "label": "3", "index": 3})
    assert (lenet.label, lenet.index, lenet.number) == ("3", 3, "3")
    with pytest.raises(ProtocolError, match="label"):
        Classification.from_json({"confidence": 0.8})


def test_results_are_frozen() -> None:
    result = Classification("1")
    with pytest.raises(AttributeError):
        result.label = "2"  # type: ignore[misc]


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequest), (401, AuthenticationError), (404, NotFound), (405, APIError),
     (406, APIError), (409, TrainingInProgress), (413, PayloadTooLarge),
     (415, UnsupportedMedia), (500, ServerError), (503, ServerError)],
)
def test_status_maps_to_one_class(status: int, cls: type[APIError]) -> None:
    error = error_for_status(status, {"error": "why", "status": status})
    assert type(error) is cls
    assert (str(error), error.status, error.body["error"]) == ("why", status, "why")


def test_seed_compatible_503_while_training_is_training_in_progress() -> None:
    error = error_for_status(503, {"error": "Network LeNet is training and unavailable."})
    assert isinstance(error, TrainingInProgress) and error.status == 503


def test_error_without_a_json_body_names_the_status() -> None:
    assert str(error_for_status(502, None)) == "HTTP 502"


# -- images -------------------------------------------------------------------------------


def test_every_kind_of_image_input(tmp_path: Path) -> None:
    path = sorted(IMAGES.glob("*.png"))[0] if IMAGES.is_dir() else None
    if path is None:
        path = tmp_path / "x.png"
        Image.new("L", (28, 28), 255).save(path)
    data = path.read_bytes()
    assert image_bytes(path) == data
    assert image_bytes(str(path)) == data
    assert image_bytes(bytearray(data)) == data
    assert image_bytes(memoryview(data)) == data
    with path.open("rb") as file:
        assert image_bytes(file) == data
    with Image.open(path) as pil:
        sent = image_bytes(pil)
    assert sent.startswith(b"\x89PNG")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF"])
def test_supported_formats_pass(fmt: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (30, 30), "white").save(buffer, format=fmt)
    assert nn_sdk.image_format(buffer.getvalue()) == fmt


def test_other_formats_are_refused_before_sending(tmp_path: Path) -> None:
    gif = tmp_path / "digit.gif"
    Image.new("L", (28, 28)).save(gif)
    with pytest.raises(UnsupportedMedia, match=r"digit\.gif is not a JPEG, PNG, BMP or TIFF"):
        image_bytes(gif)
    with pytest.raises(UnsupportedMedia) as caught:
        image_bytes(b"GIF89a....")
    assert caught.value.status is None


def test_wrong_input_types() -> None:
    with pytest.raises(TypeError, match="binary mode"):
        image_bytes(io.StringIO("text"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot classify a int"):
        image_bytes(42)  # type: ignore[arg-type]
    with pytest.raises(LocalFileError, match=r"cannot read no/such/file\.png"):
        image_bytes("no/such/file.png")


# -- settings -----------------------------------------------------------------------------


def test_base_url_forms() -> None:
    assert str(parse_base_url("127.0.0.1:5000")) == "http://127.0.0.1:5000"
    assert str(parse_base_url("https://example.org:8443/")) == "https://example.org:8443"
    assert parse_base_url(None).port == 5000
    for bad in ("ftp://x:1", "http://", "host:notaport"):
        with pytest.raises(ValueError):
            parse_base_url(bad)


def test_default_address_is_this_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NN_LOCALADDR", raising=False)
    address = nn_sdk.local_address()
    assert address.count(".") == 3
    assert nn_sdk.default_base_url() == f"http://{address}:5000"
    assert str(NNClient().base_url) == f"http://{address}:5000"
    monkeypatch.setenv("NN_LOCALADDR", "10.1.2.3")  # the server's override, honoured too
    assert nn_sdk.default_base_url() == "http://10.1.2.3:5000"


def test_timeout_values() -> None:
    assert Timeout.coerce(5) == Timeout(total=5.0, connect=5.0)
    assert Timeout.coerce(None) == Timeout(total=None, connect=None)
    custom = Timeout(total=60, connect=2)
    assert Timeout.coerce(custom) is custom


def test_verify_settings(tmp_path: Path) -> None:
    assert ssl_setting(True) is True and ssl_setting(False) is False
    context = ssl.create_default_context()
    assert ssl_setting(context) is context
    with pytest.raises(ValueError, match="certificate file not found"):
        ssl_setting(tmp_path / "missing.pem")


def test_everything_the_sdk_raises_is_an_nn_error(tmp_path: Path) -> None:
    """Bad arguments, closed clients and unreadable inputs included — and each is still
    the built-in exception it used to be."""
    attempts: list[tuple[type[BaseException], object]] = [
        (ValueError, lambda: NNClient("127.0.0.1:5000", user="a:b")),
        (ValueError, lambda: NNClient("ftp://127.0.0.1:21")),
        (ValueError, lambda: NNClient("https://127.0.0.1:1", verify=str(tmp_path / "none.pem"))),
        (TypeError, lambda: image_bytes(42)),  # type: ignore[arg-type]
        (TypeError, lambda: image_bytes(io.StringIO("text"))),  # type: ignore[arg-type]
        (OSError, lambda: image_bytes(tmp_path / "missing.png")),
        (Exception, lambda: image_bytes(b"GIF89a")),
    ]
    for builtin, attempt in attempts:
        with pytest.raises(NNError) as caught:
            attempt()  # type: ignore[operator]
        assert isinstance(caught.value, builtin), caught.value


async def test_a_closed_client_and_bad_options_raise_nn_errors() -> None:
    client = NNClient("127.0.0.1:9")
    await client.aclose()
    with pytest.raises(InvalidArgument, match="closed"):
        await client.status()
    with pytest.raises(InvalidArgument, match="batch_size"):
        await NNClient("127.0.0.1:9").classify_many([], batch_size=0)
    with pytest.raises(InvalidArgument, match="network name"):
        await NNClient("127.0.0.1:9").about("")
