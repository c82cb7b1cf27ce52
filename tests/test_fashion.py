"""The Fashion-MNIST network without HTTP: its preprocessing on real image bytes (native
images pass almost unchanged, photos become native-looking), and its shipped weights
through the project's own evaluate command."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nn_server.core.files import weights_version
from nn_server.core.records import VersionRecord
from nn_server.networks import datasets
from nn_server.networks.fashion import FASHION_MNIST, Fashion, prepare_garment
from nn_server.networks.images import BlankImage
from tests.conftest import DATA_DIR, ROOT

SAMPLES = 1000


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def test_split() -> datasets.Split:
    return datasets.load_split(FASHION_MNIST, "test", DATA_DIR, allow_download=False)


def test_native_images_pass_unchanged(test_split: datasets.Split) -> None:
    """Fashion-MNIST's own 28×28 images are already what the network reads."""
    for image in test_split.images[:SAMPLES]:
        assert np.array_equal(prepare_garment(encode(Image.fromarray(image))), image)


def test_enlarged_native_images_read_as_well_as_the_originals(
    test_split: datasets.Split,
) -> None:
    """Light on black at 3×: cropped, scaled back to 28 on the longer side and centred, the
    shipped weights read them about as well as the data set's own images."""
    net = Fashion()
    net.load_onnx(Fashion.shipped_weights().with_suffix(".onnx"), "shipped")
    images, labels = test_split.images[:SAMPLES], test_split.labels[:SAMPLES]
    native = [encode(Image.fromarray(i)) for i in images]
    enlarged = [encode(Image.fromarray(i).resize((84, 84), Image.Resampling.BICUBIC))
                for i in images]
    scores = [np.mean([p.index == label for p, label in
                       zip(net.classify(files), labels, strict=True)])
              for files in (native, enlarged)]
    assert scores[0] >= 0.93 and scores[1] >= scores[0] - 0.02, scores


def test_a_catalogue_photo_becomes_the_native_image(test_split: datasets.Split) -> None:
    """Negated, enlarged 4×, on a white page with a margin, in colour: what comes back is
    close to the data set's own image."""
    image = test_split.images[0]
    big = Image.fromarray(255 - image).resize((112, 112), Image.Resampling.BICUBIC)
    page = Image.new("L", (160, 150), 255)
    page.paste(big, (20, 17))
    photo = Image.merge("RGB", (page, page, page.point(lambda v: min(255, v + 10))))
    back = prepare_garment(encode(photo, "JPEG", quality=90)).astype(int)
    assert min(np.abs(np.roll(back, (dy, dx), axis=(0, 1)) - image).mean()
               for dy in (-1, 0, 1) for dx in (-1, 0, 1)) < 10


def test_the_longer_side_is_scaled_to_28_keeping_the_aspect() -> None:
    page = np.full((200, 300), 255, np.uint8)
    page[50:150, 100:150] = 0  # a dark 100 × 50 (tall) object
    garment = prepare_garment(encode(Image.fromarray(page)))
    rows, cols = np.nonzero(garment > 128)
    assert rows.max() - rows.min() + 1 == 28
    assert 12 <= cols.max() - cols.min() + 1 <= 16, "half as wide as tall"
    assert abs((cols.max() + cols.min()) / 2 - 13.5) <= 1, "centred"


@pytest.mark.parametrize("level", [0, 128, 250])
def test_a_flat_picture_has_no_garment(level: int) -> None:
    with pytest.raises(BlankImage, match="no garment"):
        prepare_garment(encode(Image.new("L", (64, 64), level)))


def test_the_shipped_weights_score_at_least_93_percent() -> None:
    """Issue 8's bar, through the project's own evaluation command on all 10,000 images."""
    result = subprocess.run(
        [sys.executable, "-m", "nn_server.training", "evaluate", "--network", "fashion",
         "--data-dir", str(DATA_DIR), "--no-download"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"test accuracy (\d+\.\d{2}) %", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) >= 93.0
    record = VersionRecord.read(Fashion.shipped_weights()).to_json()
    assert record["accuracy"] == match.group(1), "the shipped record describes these weights"
    assert record["weights_version"] == weights_version(Fashion.shipped_weights())
    assert Fashion.shipped_weights().stat().st_size <= 3 * 1024 * 1024
    assert Fashion.shipped_weights().with_suffix(".onnx").is_file()
