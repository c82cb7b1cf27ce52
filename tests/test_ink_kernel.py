"""The compiled preprocessing (``nn_server/networks/_ink.c``) gives LeNet exactly the digits
the NumPy/OpenCV definition in ``digits.py`` gives, byte for byte: on the samples, on MNIST
digits as other writers and cameras would send them, on random images of every shape, and
in what it refuses as blank."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bench import proxies
from nn_server.networks import datasets, digits
from nn_server.networks.images import BlankImage, read_gray

SAMPLES = Path(__file__).resolve().parents[1] / "images"


@pytest.fixture(scope="module")
def kernel() -> digits.Kernel:
    # CI and install.sh build it; a missing kernel would be a slower server, not a wrong one.
    assert digits.KERNEL is not None, "nn_server/networks/_ink.c was not built"
    return digits.KERNEL


def both(kernel: digits.Kernel, gray: np.ndarray) -> tuple[object, object]:
    """What each path makes of one image: the 28x28 digit, or the blank image's message."""
    answers: list[object] = []
    for path in (kernel, None):
        try:
            digits.KERNEL = path
            answers.append(digits.to_mnist(gray))
        except BlankImage as exc:
            answers.append(str(exc))
        finally:
            digits.KERNEL = kernel
    return answers[0], answers[1]


def assert_same(kernel: digits.Kernel, gray: np.ndarray) -> None:
    compiled, numpy = both(kernel, gray)
    if isinstance(numpy, str):
        assert compiled == numpy
    else:
        assert isinstance(compiled, np.ndarray), compiled
        assert compiled.dtype == np.uint8 and compiled.shape == (28, 28)
        assert np.array_equal(compiled, numpy), np.abs(compiled.astype(int) - numpy).max()


def test_the_kernel_shares_the_definitions_constants(kernel: digits.Kernel) -> None:
    from nn_server.networks import _ink

    assert _ink.INK_THRESHOLD == digits.INK_THRESHOLD
    assert _ink.FAINT == digits.FAINT
    assert (_ink.GRAIN_QUANTILE, _ink.GRAIN_FACTOR) == (digits.GRAIN_QUANTILE, digits.GRAIN_FACTOR)
    assert (_ink.NO_CONTRAST, _ink.NO_INK) == (1, 2)


def test_every_sample_is_the_same(kernel: digits.Kernel) -> None:
    files = sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.suffix != ".md")
    assert len(files) >= 30
    for path in files:
        assert_same(kernel, read_gray(path.read_bytes()))


def proxy_pictures(count: int) -> Iterator[bytes]:
    split = proxies.test_digits(count, datasets.data_dir())
    for number, proxy in enumerate(proxies.PROXIES.values()):
        rng = np.random.default_rng(number)
        for image in split.images:
            yield proxy(image, rng)


def test_mnist_and_the_handwriting_proxies_are_the_same(kernel: digits.Kernel) -> None:
    split = proxies.test_digits(200, datasets.data_dir())
    for image in split.images:  # MNIST itself: light on black, 28x28
        assert_same(kernel, image.astype(np.float32) / 255)
    pictures = list(proxy_pictures(40))  # 400 photos and scans of 28-112 px
    for data in pictures:
        assert_same(kernel, read_gray(data))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gray=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 300), st.integers(1, 300)),
        elements=st.floats(0, 1, width=32),
    ),
    sigma=st.sampled_from([0.0, 1.0, 4.0]),
)
def test_any_image_is_the_same(kernel: digits.Kernel, gray: np.ndarray, sigma: float) -> None:
    # Slivers (1 x 300), flat images, noise and smooth blobs: every branch of the crop,
    # the stroke correction and the blank checks.
    if sigma:
        gray = cv2.GaussianBlur(gray, (0, 0), sigma)
    assert_same(kernel, gray)


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_a_flat_page_is_blank_either_way(kernel: digits.Kernel, level: float) -> None:
    compiled, numpy = both(kernel, np.full((40, 60), level, np.float32))
    assert compiled == numpy == digits.NO_CONTRAST


def test_a_thin_one_is_centred_by_its_mass(kernel: digits.Kernel) -> None:
    # A thin "1" scales to a 20 x 2 box, which cv2.moments used to read as 20 points of a
    # contour: this one, heavier at the top, was put 3 px too low.
    page = np.ones((100, 100), np.float32)
    page[10:90, 70:72] = 0.0
    page[10:90, 72:74] = np.linspace(1.0, 0.0, 80)[:, None]
    page[10:50, 72:74] = 0.0
    compiled, numpy = both(kernel, page)
    assert isinstance(compiled, np.ndarray) and np.array_equal(compiled, numpy)
    mass = compiled.astype(float)
    rows, columns = np.indices(mass.shape)
    centre = ((mass * rows).sum() / mass.sum(), (mass * columns).sum() / mass.sum())
    assert np.allclose(centre, 14, atol=0.6), centre


def test_a_non_contiguous_image_is_read_as_the_numpy_path_reads_it(
    kernel: digits.Kernel,
) -> None:
    data = (SAMPLES / "3_pen.bmp").read_bytes()
    gray = read_gray(data)
    wide = np.zeros((gray.shape[0], gray.shape[1] * 2), np.float32)
    wide[:, ::2] = gray
    assert_same(kernel, wide[:, ::2])


def test_the_kernel_refuses_what_is_not_a_float32_image(kernel: digits.Kernel) -> None:
    with pytest.raises(ValueError):
        kernel.ink_box(np.zeros((4, 4), np.float64), 4, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        kernel.ink_box(np.zeros((4, 4), np.float32), 5, 4)
    with pytest.raises(ValueError):
        kernel.centre(np.zeros((30, 30), np.float32), 30, 30)
