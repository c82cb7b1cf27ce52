"""Micro-batching through the real server: the same answers batched or not, and the batch
request form (issue 5)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image

from nn_server.networks import datasets
from nn_server.networks.lenet import MNIST, LeNet
from tests.conftest import LiveServer, start_server
from tests.server.conftest import IMAGES, b64, call

MNIST_SAMPLE = 200
CONCURRENCY = 32


# The shipped weights, so that the sample digits' labels can be checked too.
SHIPPED = {"NN_SEED_WEIGHTS": str(LeNet.shipped_weights())}


@pytest.fixture(scope="module")
def unbatched() -> Iterator[LiveServer]:
    with start_server("-d", "127.0.0.1:0", env={**SHIPPED, "NN_BATCHING": "0"}) as live:
        yield live


@pytest.fixture(scope="module")
def batched() -> Iterator[LiveServer]:
    # A small wait makes batches form even from a test client that cannot saturate a worker.
    with start_server("-d", "127.0.0.1:0", env={**SHIPPED, "NN_MAX_DELAY_MS": "5"}) as live:
        yield live


def mnist_pngs() -> list[str]:
    test = datasets.load_split(MNIST, "test")
    rng = np.random.default_rng(5)
    blobs = []
    for i in rng.choice(len(test), MNIST_SAMPLE, replace=False):
        buf = io.BytesIO()
        Image.fromarray(test.images[i]).save(buf, "PNG")
        blobs.append(b64(buf.getvalue()))
    return blobs


async def classify_all(http: aiohttp.ClientSession, live: LiveServer,
                       images: list[str]) -> list[dict[str, Any]]:
    """Every image as its own request, ``CONCURRENCY`` at a time, answers in input order."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(image: str) -> dict[str, Any]:
        async with limit:
            status, body, _ = await call(http, live, "POST", "/lenet/classify",
                                         json={"image": image})
            assert status == 200, body
            return body

    return await asyncio.gather(*(one(i) for i in images))


async def test_batching_changes_no_answer(
    batched: LiveServer, unbatched: LiveServer, http: aiohttp.ClientSession
) -> None:
    images = [b64(p) for p in IMAGES] + mnist_pngs()
    with_batches = await classify_all(http, batched, images)
    one_by_one = await classify_all(http, unbatched, images)
    assert [a["number"] for a in with_batches] == [b["number"] for b in one_by_one]
    np.testing.assert_allclose(
        [a["probabilities"] for a in with_batches],
        [b["probabilities"] for b in one_by_one], atol=1e-4,
    )
    # The sample digits are labelled by their file names: batching kept them right.
    assert [a["number"] for a in with_batches[: len(IMAGES)]] == [p.name[0] for p in IMAGES]

    _, ready, _ = await call(http, batched, "GET", "/ready")
    stats = ready["batching"]["lenet"]
    assert stats["largest"] > 1, f"concurrent requests were never batched: {stats}"
    assert stats["items"] >= len(images)
    _, ready, _ = await call(http, unbatched, "GET", "/ready")
    assert ready["batching"]["lenet"]["largest"] == 1


async def test_batch_request_answers_each_image_in_order(
    batched: LiveServer, http: aiohttp.ClientSession
) -> None:
    images = [b64(p) for p in IMAGES]
    images.insert(3, "this is not base64!")
    images.insert(7, b64(b"GIF89a" + b"\0" * 64))
    images.insert(11, b64(b"not an image"))
    status, body, _ = await call(http, batched, "POST", "/lenet/classify",
                                 json={"images": images})
    assert status == 200, body
    assert len(body["numbers"]) == len(body["results"]) == len(images)
    bad = {3: 400, 7: 400, 11: 400}
    for i, result in enumerate(body["results"]):
        if i in bad:
            assert body["numbers"][i] is None
            assert result["status"] == bad[i] and result["error"]
        else:
            assert "error" not in result and len(result["probabilities"]) == 10
    good = [n for i, n in enumerate(body["numbers"]) if i not in bad]
    assert good == [p.name[0] for p in IMAGES]


async def test_batch_request_limits(batched: LiveServer, http: aiohttp.ClientSession) -> None:
    tiny = b64(min(IMAGES, key=lambda p: p.stat().st_size))
    status, body, _ = await call(http, batched, "POST", "/lenet/classify",
                                 json={"images": [tiny] * 1025})
    assert status == 400 and "at most 1024" in body["error"]
    for empty in ([], "abc", None):
        status, body, _ = await call(http, batched, "POST", "/lenet/classify",
                                     json={"images": empty})
        assert status == 400 and "non-empty list" in body["error"]
