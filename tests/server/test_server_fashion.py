"""The second network over HTTP: Fashion-MNIST test images as the data set has them and as
catalogue photos (a dark garment on white, enlarged, with a margin, JPEG), the samples,
and the answers' keys."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from nn_server.networks import datasets
from nn_server.networks.fashion import FASHION_MNIST, Fashion
from tests.conftest import LiveServer
from tests.server.conftest import b64, call

IMAGES = 500
BATCH = 100
NATIVE_BAR = 0.93
CATALOGUE_BAR = 0.90


def png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "PNG")
    return out.getvalue()


def catalogue_photo(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """Inverted to a dark garment on white, upscaled 2-4×, a white margin, JPEG 85."""
    scale = int(rng.integers(2, 5))
    garment = Image.fromarray(255 - image).resize((28 * scale, 28 * scale),
                                                  Image.Resampling.BICUBIC)
    margin = int(rng.integers(4, 8 * scale))
    page = Image.new("L", (garment.width + 2 * margin, garment.height + 2 * margin), 255)
    page.paste(garment, (margin, margin))
    out = io.BytesIO()
    page.save(out, "JPEG", quality=85)
    return out.getvalue()


@pytest.fixture(scope="module")
def test_images() -> tuple[np.ndarray, np.ndarray]:
    test = datasets.load_split(FASHION_MNIST, "test", allow_download=False)
    picks = np.random.default_rng(0).choice(len(test), IMAGES, replace=False)
    return test.images[picks], test.labels[picks]


async def accuracy(http, live: LiveServer, files: list[bytes], labels: np.ndarray) -> float:
    answers: list[str | None] = []
    for start in range(0, len(files), BATCH):
        status, body, _ = await call(http, live, "POST", "/fashion/classify", json={
            "images": [b64(f) for f in files[start : start + BATCH]]})
        assert status == 200, body
        assert "numbers" not in body, "only LeNet keeps the original 'number'"
        answers += body["labels"]
    truth = [Fashion.labels[int(label)] for label in labels]
    return float(np.mean([a == t for a, t in zip(answers, truth, strict=True)]))


async def test_fashion_mnist_test_images_as_the_data_set_has_them(
    shipped_server: LiveServer, http, test_images: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = test_images
    score = await accuracy(http, shipped_server, [png(i) for i in images], labels)
    print(f"\nFashion-MNIST native, {IMAGES} test images over HTTP: {score:.2%}")
    assert score >= NATIVE_BAR


async def test_fashion_mnist_test_images_as_catalogue_photos(
    shipped_server: LiveServer, http, test_images: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = test_images
    rng = np.random.default_rng(1)
    score = await accuracy(http, shipped_server, [catalogue_photo(i, rng) for i in images],
                           labels)
    print(f"\nFashion-MNIST as catalogue photos, {IMAGES} test images over HTTP: {score:.2%}")
    assert score >= CATALOGUE_BAR


@pytest.mark.parametrize("sample", Fashion.sample_files(), ids=lambda p: p.name)
async def test_every_sample_reads_as_its_label(shipped_server: LiveServer, http,
                                               sample) -> None:
    status, body, _ = await call(http, shipped_server, "POST", "/fashion/classify",
                                 json={"image": b64(sample), "top_k": 3})
    assert status == 200, body
    label = Fashion.sample_label(sample)
    assert (body["label"], body["index"]) == (label, Fashion.labels.index(label))
    assert len(body["probabilities"]) == 10 and len(body["top"]) == 3


async def test_the_second_network_is_listed_and_described(shipped_server: LiveServer,
                                                          http) -> None:
    _, listed, _ = await call(http, shipped_server, "GET", "/list_nn")
    assert "Fashion-MNIST url:/fashion" in listed["text"]
    _, about, _ = await call(http, shipped_server, "GET", "/fashion/about")
    assert about["labels"] == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert about["dataset"] == "Fashion-MNIST"
    assert float(about["shipped_weights"]["accuracy"]) >= 93.0


async def test_a_blank_picture_is_no_garment(shipped_server: LiveServer, http) -> None:
    status, body, _ = await call(http, shipped_server, "POST", "/fashion/classify",
                                 json={"image": b64(png(np.full((64, 64), 250, np.uint8)))})
    assert status == 400 and "no garment" in body["error"]
