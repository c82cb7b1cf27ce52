"""Properties of the compiled kernel (``_ink.c``) against the NumPy definition in
``digits.py``, on arbitrary input: any array — NaN, infinities, negative values, values
near float32's limits, empty, any shape — gets the same digit or the same refusal from
both paths, and any claimed size (negative, zero, past the buffer, past ``MAX_SIDE``,
large enough to overflow ``h * w * 4`` or Py_ssize_t) gets what the NumPy reshape of the
buffer would get. A refusal is a ValueError, never a crash or undefined behaviour."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from nn_server.networks import digits
from nn_server.networks.images import BlankImage, FloatImage, UnreadableImage

FLT_MAX = float(np.finfo(np.float32).max)
# _ink.c's longest side and ink_box's statuses, checked against the kernel's own below (not
# imported here, so that an unbuilt kernel fails the tests with the fixture's message).
MAX_SIDE = 65536
NO_CONTRAST, NO_INK = 1, 2
ANY_FLOAT = st.floats(width=32, allow_nan=True, allow_infinity=True)
# Values that stress the arithmetic rather than the crop: the limits, where sums and
# differences overflow, and denormals, where 1 / (hi - lo) does. (As float32 values: the
# arrays take only what float32 holds exactly.)
EXTREMES = st.sampled_from([float(np.float32(v)) for v in [
    FLT_MAX, -FLT_MAX, FLT_MAX / 2, -1e38, 1e38, 2.0**100, 0.0, 1.0, 1e-40, -1e-45, 1e-45,
    np.nan, np.inf, -np.inf]])
IMAGES = hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1,
                                                  max_side=48), elements=ANY_FLOAT)
# Empty, 0-D, 1-D and 3-D arrays: not images, refused before either path runs.
NOT_IMAGES = hnp.arrays(np.float32, st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=5).filter(lambda s: 0 in s),
    hnp.array_shapes(min_dims=0, max_dims=1, min_side=0, max_side=8),
    hnp.array_shapes(min_dims=3, max_dims=3, min_side=0, max_side=4),
), elements=ANY_FLOAT)
PAPER_WITH_SPECIALS = hnp.arrays(
    np.float32, st.tuples(st.integers(28, 64), st.integers(28, 64)),
    elements=st.sampled_from([1.0, 0.0, 0.5, np.nan, np.inf, -np.inf, -3.0, 2.0**100]),
)
PAPER_WITH_EXTREMES = hnp.arrays(
    np.float32, st.tuples(st.integers(8, 64), st.integers(8, 64)),
    elements=st.one_of(EXTREMES, st.floats(0, 1, width=32)),
)
# Claimed sides: small ones around the true size, and the ones that break arithmetic.
SIDES = st.one_of(
    st.integers(-3, 80),
    st.sampled_from([MAX_SIDE, MAX_SIDE + 1, 2**31, 2**32 + 1, 2**62 + 1,
                     2**63 - 1, -(2**63), 2**64, -(2**64), 2**100]),
    st.integers(-(2**70), 2**70),
)


@pytest.fixture(scope="module")
def kernel() -> digits.Kernel:
    assert digits.KERNEL is not None, "nn_server/networks/_ink.c was not built"
    return digits.KERNEL


def outcome(kernel: digits.Kernel | None, gray: FloatImage) -> object:
    """``to_mnist``'s digit as bytes, or the refusal's type and message."""
    saved = digits.KERNEL
    digits.KERNEL = kernel
    try:
        return digits.to_mnist(gray).tobytes()
    except (BlankImage, ValueError) as exc:
        return type(exc).__name__, str(exc)
    finally:
        digits.KERNEL = saved


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gray=st.one_of(IMAGES, NOT_IMAGES, PAPER_WITH_SPECIALS, PAPER_WITH_EXTREMES))
def test_both_paths_agree_on_any_array(kernel: digits.Kernel, gray: FloatImage) -> None:
    assert outcome(kernel, gray) == outcome(None, gray)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 700), w=st.integers(1, 700), special=st.sampled_from(
    [np.nan, np.inf, -np.inf]), at=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_one_special_pixel_anywhere_is_refused_by_both(
    kernel: digits.Kernel, h: int, w: int, special: float, at: tuple[float, float]
) -> None:
    # Both paths check the image after the shrink to 256 px and the smoothing: that must
    # never average a NaN or an infinity away.
    gray = np.ones((h, w), np.float32)
    gray[int(at[0] * (h - 1)), int(at[1] * (w - 1))] = special
    assert outcome(kernel, gray) == outcome(None, gray) == ("ValueError", digits.NOT_FINITE)


def test_the_kernel_shares_these_constants(kernel: digits.Kernel) -> None:
    from nn_server.networks import _ink

    assert (_ink.NOT_FINITE, _ink.TOO_LARGE) == (digits.NOT_FINITE, digits.TOO_LARGE)
    assert (_ink.MAX_SIDE, _ink.NO_CONTRAST, _ink.NO_INK) == (MAX_SIDE, NO_CONTRAST, NO_INK)


def test_not_finite_pixels_are_refused_alike(kernel: digits.Kernel) -> None:
    for special in (np.nan, np.inf, -np.inf):
        gray = np.ones((40, 40), np.float32)
        gray[20, 20] = special
        refused = ("ValueError", digits.NOT_FINITE)
        assert outcome(kernel, gray) == outcome(None, gray) == refused
        with pytest.raises(ValueError, match="NaN or infinite"):
            kernel.ink_box(gray, 40, 40)


def test_pixels_whose_arithmetic_overflows_are_refused_alike(kernel: digits.Kernel) -> None:
    # Ink at -3.4e38 on paper at +3.4e38: ink minus paper overflows float32. The kernel
    # used to go on to convert the NaN this made to an integer (undefined behaviour).
    gray = np.full((40, 40), FLT_MAX, np.float32)
    gray[10:30, 18:22] = -FLT_MAX
    assert outcome(kernel, gray) == outcome(None, gray) == ("ValueError", digits.TOO_LARGE)
    # A 60 px page at the limit: the smoothing (from 56 px) overflows it to infinity, which
    # the kernel refused while the NumPy path, checking before smoothing, went on.
    page = np.full((60, 60), FLT_MAX, np.float32)
    assert outcome(kernel, page) == outcome(None, page) == ("ValueError", digits.NOT_FINITE)


@pytest.mark.parametrize("low, high", [(0.0, float(np.float32(1e-40))), (-FLT_MAX, FLT_MAX)])
def test_a_border_whose_range_defeats_the_quantile_slicing_is_the_same(
    kernel: digits.Kernel, low: float, high: float
) -> None:
    # The kernel's quantiles slice levels by BUCKETS / (hi - lo): infinite for a border of
    # 0 and 1e-40 (a digit on plain 0..1 paper), 0 for -3.4e38 to 3.4e38. Either made a
    # NaN that the kernel converted to an integer (undefined behaviour; UBSan reports it at
    # the cast, while x86 happened to give the right slice).
    gray = np.zeros((40, 40), np.float32)
    gray[0, ::2], gray[0, 1::2] = low, high
    gray[10:30, 18:22] = 1.0
    assert outcome(kernel, gray) == outcome(None, gray)


def test_empty_and_non_2d_arrays_are_refused_alike(kernel: digits.Kernel) -> None:
    for shape in [(0, 5), (5, 0), (0, 0), (30,), (), (30, 30, 1)]:
        gray = np.zeros(shape, np.float32)
        refused = ("ValueError", digits.NOT_AN_IMAGE)
        assert outcome(kernel, gray) == outcome(None, gray) == refused, shape


def test_a_size_that_overflows_is_refused_not_a_crash(kernel: digits.Kernel) -> None:
    """2**62 + 1 rows of 4: h * w * 4 wraps around to 16, the buffer's true length, and
    used to send the kernel far past the buffer's end (a segfault)."""
    buffer = np.zeros(4, np.float32)
    with pytest.raises(ValueError):
        kernel.ink_box(buffer, 2**62 + 1, 4)
    with pytest.raises(ValueError):
        kernel.centre(buffer, 2**62 + 1, 4)
    # Past Py_ssize_t: the same ValueError, not the argument parser's OverflowError.
    for h, w in [(2**64, 1), (-(2**64), 1), (1, 2**100), (MAX_SIDE + 1, 1)]:
        with pytest.raises(ValueError):
            kernel.ink_box(buffer, h, w)
        with pytest.raises(ValueError):
            kernel.centre(buffer, h, w)
    with pytest.raises(TypeError):  # a side is an integer, as before
        kernel.ink_box(buffer, 2.0, 2)  # type: ignore[arg-type]


class WrongSize(ValueError):
    """The reference's refusal of a claimed size (the kernel's words differ)."""


def claimed(buffer: FloatImage, h: int, w: int) -> FloatImage:
    """The h x w image a buffer holds, or WrongSize: what the kernel's argument check is
    meant to be. Written out, as NumPy's reshape would take -1 for "whatever fits"."""
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE) or h * w != buffer.size:
        raise WrongSize
    gray = buffer.reshape(h, w)
    if not np.isfinite(gray).all():
        raise ValueError(digits.NOT_FINITE)
    return gray


def numpy_ink_box(buffer: FloatImage, h: int, w: int) -> object:
    """``_ink.ink_box`` by the definition: ink_map, crop_to_ink and restroke."""
    gray = claimed(buffer, h, w)
    try:
        box = digits.restroke(digits.crop_to_ink(digits.ink_map(gray)))
    except BlankImage as exc:
        return NO_CONTRAST if str(exc) == digits.NO_CONTRAST else NO_INK
    return box.astype(np.float32).tobytes(), *box.shape


def numpy_centre(buffer: FloatImage, h: int, w: int) -> object:
    """``_ink.centre`` by the definition: to_mnist's last steps."""
    digit = claimed(buffer, h, w)
    if h > digits.CANVAS or w > digits.CANVAS:
        raise WrongSize
    digit = np.clip(digit, 0.0, 1.0)
    top = float(digit.max())
    if top > 0:
        digit = digit / top
    return (digits.center(digit) * 255.0 + 0.5).astype(np.uint8).tobytes()


def answer(call: Callable[[FloatImage, int, int], object], buffer: FloatImage, h: int,
           w: int) -> object:
    """What a call answers, with refusals of the claimed size alike whatever their words."""
    try:
        result = call(buffer, h, w)
    except WrongSize:
        return "wrong size"
    except ValueError as exc:
        return str(exc) if str(exc) in (digits.NOT_FINITE, digits.TOO_LARGE) else "wrong size"
    if isinstance(result, tuple):
        pixels, h, w = result
        return bytes(pixels), h, w
    return bytes(result) if isinstance(result, bytearray) else result


@st.composite
def buffers_and_claims(draw: st.DrawFn) -> tuple[FloatImage, int, int]:
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    pixels = st.one_of(st.floats(0, 1, width=32), ANY_FLOAT, EXTREMES)
    buffer = draw(hnp.arrays(np.float32, draw(st.sampled_from([h * w, h * w + 1, 0])),
                             elements=pixels))
    # The true size, the two swapped (which fits the buffer too), or anything at all.
    claim = draw(st.sampled_from(["true", "swapped", "any"]))
    if claim == "true":
        return buffer, h, w
    if claim == "swapped":
        return buffer, w, h
    return buffer, draw(SIDES), draw(SIDES)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=buffers_and_claims())
def test_any_buffer_and_claimed_size_get_the_definitions_answer(
    kernel: digits.Kernel, case: tuple[FloatImage, int, int]
) -> None:
    buffer, h, w = case
    assert answer(kernel.ink_box, buffer, h, w) == answer(numpy_ink_box, buffer, h, w)
    assert answer(kernel.centre, buffer, h, w) == answer(numpy_centre, buffer, h, w)


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
def test_a_float_tiff_holding_nan_or_inf_is_a_clear_refusal(special: float) -> None:
    """Where such pixels come from: the image error (400) names them."""
    pixels = np.ones((40, 40), np.float32)
    pixels[10:30, 18:22] = 0.0
    pixels[0, 0] = special
    out = io.BytesIO()
    Image.fromarray(pixels, mode="F").save(out, format="TIFF")
    with pytest.raises(UnreadableImage, match="NaN or infinite"):
        digits.prepare_digit(out.getvalue())
