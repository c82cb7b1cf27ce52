"""Every SDK method and error against the real server (``python -m nn_server``) over HTTP.

Training, HTTPS and the seed-compatible mode are in ``test_training.py``/``test_tls.py``.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from nn_sdk import (
    APIError,
    AuthenticationError,
    BadRequest,
    Classification,
    NetworkSummary,
    NNClient,
    NotFound,
    TrainingStatus,
    UnsupportedMedia,
)

IMAGES = Path(__file__).resolve().parents[2] / "images"
SAMPLES = sorted(p for p in IMAGES.glob("[0-9]_*")
                 if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"))


AUTH = "Basic " + base64.b64encode(b"test_nn:lenet").decode()


def sample(digit: str = "7") -> Path:
    matches = [p for p in SAMPLES if p.name.startswith(digit)]
    assert matches, f"images/ must hold a sample of {digit}"
    return matches[0]


@pytest.fixture
async def client(shipped_server: Any) -> Any:
    async with NNClient(shipped_server.url) as client:
        yield client


async def test_list_networks(client: NNClient) -> None:
    networks = await client.list_networks()
    assert NetworkSummary("lenet", "LeNet", "/lenet") in networks


async def test_about(client: NNClient) -> None:
    info = await client.about("lenet")
    assert info.name == "lenet" and info.title == "LeNet"
    assert "LeNet" in info.description
    assert info.labels == tuple("0123456789")


async def test_status(client: NNClient) -> None:
    status = await client.status()
    assert isinstance(status, TrainingStatus)
    assert status.state == "idle" and status.accuracy is not None and status.datetime is not None
    assert status.weights_version


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
async def test_classify_every_sample_image(client: NNClient, path: Path) -> None:
    result = await client.classify(path)
    assert result.number == path.name[0]
    assert result.confidence is not None and 0 < result.confidence <= 1
    assert len(result.probabilities) == 10
    assert sum(result.probabilities) == pytest.approx(1, abs=1e-3)
    assert result.weights_version


async def test_classify_accepts_bytes_files_and_pil_images(client: NNClient) -> None:
    path = sample("3")
    with path.open("rb") as file:
        from_file = await client.classify(file)
    with Image.open(path) as image:
        from_pil = await client.classify(image)
    from_bytes = await client.classify(path.read_bytes())
    assert from_file.number == from_pil.number == from_bytes.number == "3"


async def test_classify_many_keeps_order_and_per_image_errors(client: NNClient) -> None:
    images: list[Any] = [*SAMPLES[:6], b"GIF89a not allowed", *SAMPLES[6:10]]
    results = await client.classify_many(images, concurrency=3)
    assert len(results) == len(images)
    assert isinstance(results[6], UnsupportedMedia)
    for image, result in zip(images, results, strict=True):
        if isinstance(image, Path):
            assert isinstance(result, Classification) and result.number == image.name[0]


async def test_one_shot_calls_without_async_with(shipped_server: Any) -> None:
    client = NNClient(shipped_server.url)
    assert (await client.classify(sample("1"))).number == "1"
    assert (await client.status()).state == "idle"  # a second one-shot session
    assert (await client.classify_many([sample("2")]))[0] == await client.classify(sample("2"))


# -- errors -------------------------------------------------------------------------------


async def test_wrong_password_is_an_authentication_error(shipped_server: Any) -> None:
    async with NNClient(shipped_server.url, password="wrong") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.list_networks()
    assert caught.value.status == 401 and str(caught.value)


async def test_unknown_network_is_not_found(client: NNClient) -> None:
    with pytest.raises(NotFound, match="nosuchnet") as caught:
        await client.about("nosuchnet")
    assert caught.value.status == 404


async def test_unreadable_image_is_a_bad_request(client: NNClient) -> None:
    with pytest.raises(BadRequest) as caught:
        await client.classify(b"\x89PNG\r\n\x1a\n" + b"truncated")
    assert caught.value.status == 400


async def test_too_small_image_is_a_bad_request(client: NNClient) -> None:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buffer, format="PNG")
    with pytest.raises(BadRequest, match="28"):
        await client.classify(buffer.getvalue())


async def test_unsupported_format_is_refused_locally(client: NNClient, tmp_path: Path) -> None:
    gif = tmp_path / "seven.gif"
    Image.new("L", (28, 28), 255).save(gif)
    with pytest.raises(UnsupportedMedia) as caught:
        await client.classify(gif)
    assert caught.value.status is None  # never sent


async def test_servers_415_maps_to_unsupported_media(client: NNClient) -> None:
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buffer, format="GIF")
    payload = {"image": base64.b64encode(buffer.getvalue()).decode()}
    with pytest.raises(UnsupportedMedia) as caught:
        await client._request("POST", "/lenet/classify", payload)  # past the local check
    assert caught.value.status == 415


async def test_other_statuses_are_api_errors(client: NNClient) -> None:
    with pytest.raises(APIError) as caught:
        await client._request("POST", "/list_nn")
    assert type(caught.value) is APIError and caught.value.status == 405


async def test_classify_many_uses_the_batch_form(shipped_server: Any) -> None:
    """Ten images in batches of four are three requests (counted by the server's
    metrics), and an image the server refuses gets its own error in its own slot."""
    tiny = io.BytesIO()
    Image.new("L", (10, 10), 255).save(tiny, "PNG")  # a PNG, but under 28x28
    images: list[Any] = [*SAMPLES[:4], tiny.getvalue(), *SAMPLES[4:9]]

    async def classify_requests() -> float:
        # Every process's counters are in shared files the moment they count.
        async with aiohttp.ClientSession() as http, http.get(
            shipped_server.url + "/metrics", headers={"Authorization": AUTH}
        ) as resp:
            text = await resp.text()
        return sum(
            sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "nn_requests_total"
            and sample.labels == {"route": "/lenet/classify", "method": "POST", "status": "200"}
        )

    before = await classify_requests()
    async with NNClient(shipped_server.url) as client:
        results = await client.classify_many(images, batch_size=4)
    assert await classify_requests() - before == 3
    assert isinstance(results[4], BadRequest) and results[4].status == 400
    assert [r.number for r in results if isinstance(r, Classification)] == [
        p.name[0] for p in images if isinstance(p, Path)]
