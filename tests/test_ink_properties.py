"""Properties of the compiled kernel (``_ink.c``) against the NumPy definition in
``digits.py``, on arbitrary input: any array — NaN, infinities, negative or huge values,
any shape — gets the same digit or the same refusal from both paths, and no claimed size
(negative, zero, past the buffer, large enough to overflow ``h * w * 4``) gets past the
kernel's argument check. A refusal is a ValueError, never a crash."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nn_server.networks import digits
from nn_server.networks.images import BlankImage

ANY_FLOAT = st.floats(width=32, allow_nan=True, allow_infinity=True)
IMAGES = hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1,
                                                  max_side=48), elements=ANY_FLOAT)
PAPER_WITH_SPECIALS = hnp.arrays(
    np.float32, st.tuples(st.integers(28, 64), st.integers(28, 64)),
    elements=st.sampled_from([1.0, 0.0, 0.5, np.nan, np.inf, -np.inf, -3.0, 2.0**100]),
)
SIZES = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@pytest.fixture(scope="module")
def kernel() -> digits.Kernel:
    assert digits.KERNEL is not None, "nn_server/networks/_ink.c was not built"
    return digits.KERNEL


def outcome(kernel: digits.Kernel | None, gray: np.ndarray) -> object:
    """The digit's bytes, or the refusal's type and message."""
    saved = digits.KERNEL
    digits.KERNEL = kernel
    try:
        return digits.to_mnist(gray).tobytes()
    except (BlankImage, ValueError) as exc:
        return type(exc).__name__, str(exc)
    finally:
        digits.KERNEL = saved


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gray=st.one_of(IMAGES, PAPER_WITH_SPECIALS))
def test_both_paths_agree_on_any_array(kernel: digits.Kernel, gray: np.ndarray) -> None:
    assert outcome(kernel, gray) == outcome(None, gray)


def test_not_finite_pixels_are_refused_alike(kernel: digits.Kernel) -> None:
    for special in (np.nan, np.inf, -np.inf):
        gray = np.ones((40, 40), np.float32)
        gray[20, 20] = special
        refused = ("ValueError", digits.NOT_FINITE)
        assert outcome(kernel, gray) == outcome(None, gray) == refused
        with pytest.raises(ValueError, match="NaN or infinite"):
            kernel.ink_box(gray, 40, 40)
    assert kernel.NOT_FINITE == digits.NOT_FINITE  # type: ignore[attr-defined]


def test_a_size_that_overflows_is_refused_not_a_crash(kernel: digits.Kernel) -> None:
    """2**62 + 1 rows of 4: h * w * 4 wraps around to 16, the buffer's true length."""
    buffer = np.zeros(4, np.float32)
    with pytest.raises(ValueError):
        kernel.ink_box(buffer, 2**62 + 1, 4)
    with pytest.raises(ValueError):
        kernel.centre(buffer, 2**62 + 1, 4)


@settings(max_examples=300, deadline=None)
@given(h=SIZES, w=SIZES, length=st.integers(0, 64))
def test_no_claimed_size_gets_past_the_check(kernel: digits.Kernel, h: int, w: int,
                                             length: int) -> None:
    buffer = np.full(length, 0.5, np.float32)
    for call in (kernel.ink_box, kernel.centre):
        try:
            call(buffer, h, w)
        except ValueError:
            continue
        assert h * w == length and h >= 1 and w >= 1, "only a true size is accepted"


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
def test_a_float_tiff_holding_nan_or_inf_is_a_clear_refusal(special: float) -> None:
    """Where such pixels come from: the image error (400) names them."""
    import io

    from PIL import Image

    from nn_server.networks.images import UnreadableImage

    pixels = np.ones((40, 40), np.float32)
    pixels[10:30, 18:22] = 0.0
    pixels[0, 0] = special
    out = io.BytesIO()
    Image.fromarray(pixels, mode="F").save(out, format="TIFF")
    with pytest.raises(UnreadableImage, match="NaN or infinite"):
        digits.prepare_digit(out.getvalue())
