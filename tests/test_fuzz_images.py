"""Fuzzing every network's preprocessing with hypothesis: random bytes, damaged files and
random valid images of every mode, size and format. Only ``ImageError`` may come out —
never another exception — and what comes out otherwise is one input of the network's
shape. Bounded (a fixed number of examples, derandomised) so CI runs the same cases."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nn_server.networks import Network, load_registry
from nn_server.networks.images import ImageError

REGISTRY = load_registry()

FUZZ = settings(max_examples=120, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
MODES = ("1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK", "YCbCr")
FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP")
# What each format can store; a mode it cannot is converted first, as an editor would.
STORABLE = {"PNG": ("1", "L", "P", "RGB", "RGBA", "LA", "I;16"),
            "JPEG": ("L", "RGB", "CMYK"), "BMP": ("1", "L", "P", "RGB"),
            "TIFF": MODES, "GIF": ("L", "P"), "WEBP": ("RGB", "RGBA")}
NETWORKS = sorted(REGISTRY)


def preprocess(network: str, data: bytes) -> None:
    cls: type[Network] = REGISTRY[network]
    try:
        out = cls().preprocess(data)
    except ImageError:
        return
    assert out.shape == cls.input_shape and out.dtype == np.uint8


@st.composite
def images(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(STORABLE[fmt]))
    width = draw(st.integers(1, 200))
    height = draw(st.integers(1, 200))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["noise", "flat", "blob"]))
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if kind == "flat":
        pixels[:] = pixels[0, 0]
    elif kind == "blob":
        pixels[:] = 255
        pixels[height // 4 : 3 * height // 4 + 1, width // 3 : 2 * width // 3 + 1] = 0
    image = Image.fromarray(pixels, "RGB").convert(mode if mode != "I;16" else "I")
    if mode == "I;16":
        image = image.convert("I;16")
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": draw(st.integers(1, 100))} if fmt == "JPEG" else {}))
    data = out.getvalue()
    cut = draw(st.sampled_from([None, None, None, 0.5, 0.9]))
    if cut is not None:
        data = data[: int(len(data) * cut)]
    return data


@pytest.mark.parametrize("network", NETWORKS)
@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_are_refused_as_image_errors(network: str, data: bytes) -> None:
    preprocess(network, data)


@pytest.mark.parametrize("network", NETWORKS)
@FUZZ
@given(data=images())
def test_any_image_gives_an_input_or_an_image_error(network: str, data: bytes) -> None:
    preprocess(network, data)


@pytest.mark.parametrize("network", NETWORKS)
@FUZZ
@given(data=images(), flips=st.lists(st.integers(0, 10_000), min_size=1, max_size=8))
def test_damaged_images_give_an_input_or_an_image_error(
    network: str, data: bytes, flips: list[int]
) -> None:
    damaged = bytearray(data)
    for where in flips:
        damaged[where % len(damaged)] ^= 0xFF
    preprocess(network, bytes(damaged))
