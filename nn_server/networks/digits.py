"""LeNet's preprocessing: turning a user's digit photo or scan into what MNIST looks like.

Users send dark ink on light paper, photographed or scanned, in any size, mode and
orientation; MNIST is a light digit on black, its longer side scaled to 20 px and centred
by centre of mass in 28×28. ``prepare_digit`` bridges the two: decode safely
(``nn_server.networks.images``) → smooth a photo's noise → polarity → flatten uneven background →
crop to the ink → bring strokes to MNIST's width → scale to 20 px → centre by mass.
MNIST-native input passes through almost unchanged.

The functions below are the definition. On the request path, ``_ink.c`` computes the
same steps after the decode in two compiled calls (~90 µs less a digit: their ~35
NumPy/OpenCV calls on small images cost more in call overhead than in pixels) and gives
the same bytes; tests/test_ink_kernel.py holds the two to that. Without a C compiler at
install time the extension is missing and these functions serve instead.
"""

from __future__ import annotations

import logging
from typing import Protocol

import cv2
import numpy as np

from nn_server.networks.images import (
    WORK_SIDE,
    BlankImage,
    ByteImage,
    FloatImage,
    border_level,
    quantiles,
    read_gray,
    resize,
    shrink,
)

CANVAS = 28
BOX = 20
INK_THRESHOLD = 0.25
# Ink fainter than this is paper grain or JPEG ringing.
FAINT = 0.15
# On grainy paper faint ink (pencil, a dim photo) is not far above the grain, and grain
# above FAINT prints a speckled grey square around the digit: ink must then also stand
# three of the grain's standard deviations above the paper. Neighbouring pixels of the
# border (paper) differ by the grain alone, and the median |difference| of Gaussian noise
# is 0.954 sigma: so 3 sigma = GRAIN_FACTOR x that median. Clean paper, drawn or scanned,
# has none, and a thin-pen proxy or a training digit is the same as without the rule.
GRAIN_QUANTILE = 0.5
GRAIN_FACTOR = 3.14
# The background grid has about this many blocks along the shorter side.
BLOCKS = 8
PAPER_PERCENTILE = 25
# MNIST strokes are ~2.5-3 px wide on a 20 px box; thinner pen strokes get thickened,
# strokes over THICK_STROKE times as wide thinned.
TARGET_STROKE = 0.11
THICK_STROKE = 1.5
SMOOTH_FROM = 56
SMOOTH_DIVISOR = 150

NO_DIGIT = "no digit found in the image"
NO_CONTRAST = "no digit found: the image is blank or has no contrast"
# The ValueErrors of to_mnist. ``_ink.c`` raises the first two in the same words (its
# NOT_FINITE and TOO_LARGE); the third is checked before either path runs.
NOT_FINITE = "the image holds NaN or infinite pixel values"
TOO_LARGE = "the image's pixel values are too large: its ink map overflows float32"
NOT_AN_IMAGE = "expected a 2-D image of at least 1 x 1 pixels"


class Kernel(Protocol):
    """What ``_ink.c`` offers (``_ink.pyi``)."""

    NO_CONTRAST: int

    def ink_box(self, gray: FloatImage, h: int, w: int, /) -> tuple[bytearray, int, int] | int: ...

    def centre(self, digit: FloatImage, h: int, w: int, /) -> bytearray: ...


def compiled() -> Kernel | None:
    try:
        from nn_server.networks import _ink
    except ImportError as exc:
        logging.getLogger("nn_server").warning(
            "LeNet's preprocessing runs without its compiled kernel (%s); it gives the "
            "same answers, ~90 us a digit slower. Reinstall with a C compiler to build it.",
            exc,
        )
        return None
    return _ink


KERNEL = compiled()


def square(size: int) -> ByteImage:
    return np.ones((size, size), np.uint8)


def background(ink: FloatImage) -> FloatImage:
    """The paper's level under the ink, varying smoothly with the lighting.

    A grey-scale erosion with a window wider than any stroke (3/8 of the shorter side)
    erases the ink and leaves the paper; a box blur of the same size smooths the blocky
    result. OpenCV's separable filters make this ~30× cheaper than PIL's rank filters,
    which used to dominate the request path.
    """
    size = max(3, 3 * (min(ink.shape) // BLOCKS)) | 1
    eroded = cv2.erode(ink, square(size), borderType=cv2.BORDER_REPLICATE)
    return cv2.blur(eroded, (size, size), borderType=cv2.BORDER_REPLICATE)  # type: ignore[return-value]


def ink_map(gray: FloatImage) -> FloatImage:
    """Ink intensity in 0..1 (1 = ink), with paper at 0 however the page was lit.

    Polarity comes from the border, which in both MNIST and user photos is background.
    Uneven lighting is removed by subtracting an estimate of the paper (``background``).
    """
    ink = 1.0 - gray if border_level(gray) > 0.5 else gray
    # Pixels near float32's limits overflow in the two subtractions below. In the first
    # that is refused, as ``_ink.c`` refuses it: an infinity there would go on to make NaN,
    # which the kernel would convert to an integer. In the second it is defined (the
    # thresholds take -inf to 0 and inf to 1). Neither is worth a RuntimeWarning.
    with np.errstate(over="ignore"):
        ink = ink - background(ink)
        if not np.isfinite(ink).all():
            raise ValueError(TOO_LARGE)
        grain = paper_grain(ink)  # in the ink map's units, before they are rescaled
        # The erosion sits below the paper by the paper's own noise (grain, sensor noise,
        # a lighting gradient inside the window). Measuring from the paper's typical level
        # instead (a low percentile: ink never covers 3/4 of the image) keeps a blank page
        # blank rather than a digit made of noise.
        paper, top = quantiles(ink, PAPER_PERCENTILE / 100, 0.995)
        top -= paper
        if top < 0.05:
            raise BlankImage(NO_CONTRAST)
        ink = (ink - np.float32(paper)) * np.float32(1 / top)
    # Faint noise (paper grain, JPEG ringing) would widen the crop: drop it, with all
    # that is below the paper, and cap the ink at 1. OpenCV's thresholds do each in one
    # vectorised pass, ten times faster than NumPy's clip and masked assignment.
    faint = max(FAINT, GRAIN_FACTOR * grain / top)
    kept = cv2.threshold(ink, faint, 0.0, cv2.THRESH_TOZERO)[1]
    return cv2.threshold(kept, 1.0, 1.0, cv2.THRESH_TRUNC)[1]  # type: ignore[return-value]


def paper_grain(ink: FloatImage) -> float:
    """``GRAIN_QUANTILE`` of how much neighbouring pixels of the border differ (along the
    top and bottom rows, down the side columns): the border is paper (``border_level``),
    so this is 0 on clean paper and ~sigma of Gaussian grain."""
    steps = [np.abs(line[1:] - line[:-1]) for line in (ink[0], ink[-1], ink[:, 0], ink[:, -1])]
    border = np.concatenate(steps)
    if border.size == 0:
        return 0.0
    (grain,) = quantiles(border, GRAIN_QUANTILE)
    return grain


def crop_to_ink(ink: FloatImage) -> FloatImage:
    """The tight box around the ink, ignoring stray specks in otherwise empty rows/columns."""
    mask = ink > INK_THRESHOLD
    rows = np.flatnonzero(mask.sum(axis=1) >= max(1, mask.shape[1] // 200))
    cols = np.flatnonzero(mask.sum(axis=0) >= max(1, mask.shape[0] // 200))
    if rows.size == 0 or cols.size == 0:
        raise BlankImage(NO_DIGIT)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def restroke(ink: FloatImage) -> FloatImage:
    """Bring strokes towards MNIST's width: dilate pen strokes that would be hairlines at
    its scale, erode marker strokes that would fill the loops."""
    side = max(ink.shape)
    length = 2.5 * side  # a digit's stroke length is roughly 2.5× its height
    width = float(np.count_nonzero(ink > INK_THRESHOLD)) / length
    target = TARGET_STROKE * side
    if width > THICK_STROKE * target:
        radius = int((width - THICK_STROKE * target) / 2)
        if radius >= 1:
            return cv2.erode(ink, square(min(2 * radius + 1, 31)))  # type: ignore[return-value]
        return ink
    radius = int((target - width) / 2)
    if radius < 1:
        return ink
    size = min(2 * radius + 1, 31)
    # Pad first: the dilation must not be clipped by the tight crop around the ink.
    padded = cv2.copyMakeBorder(ink, radius, radius, radius, radius, cv2.BORDER_CONSTANT)
    return cv2.dilate(padded, square(size))  # type: ignore[return-value]


def smooth(gray: FloatImage) -> FloatImage:
    """A photo's sensor noise, smoothed away before anything is measured: a Gaussian of
    1/150 of the shorter side (a pixel or two; a stroke there is ten or more), which turns
    speckle that would read as ink back into paper. Images at MNIST's own scale keep
    every pixel."""
    side = min(gray.shape)
    if side < SMOOTH_FROM:
        return gray
    return cv2.GaussianBlur(gray, (0, 0), side / SMOOTH_DIVISOR)  # type: ignore[return-value]


def center(box: FloatImage) -> FloatImage:
    """Place a ≤20×20 digit in 28×28 with its centre of mass at the centre, as MNIST does."""
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    h, w = box.shape
    # cv2.moments takes an N x 2 array for N points of a contour, not for an image: a digit
    # scaled to 2 px wide (a thin "1") got a polygon's moments and was placed anywhere. A
    # zero column on the right changes none of m00, m10 and m01.
    moments = cv2.moments(box if w != 2 else np.pad(box, ((0, 0), (0, 1))))
    total = moments["m00"]
    cy = moments["m01"] / total if total else h / 2
    cx = moments["m10"] / total if total else w / 2
    top = round(CANVAS / 2 - cy)
    left = round(CANVAS / 2 - cx)
    top = min(max(top, 0), CANVAS - h)
    left = min(max(left, 0), CANVAS - w)
    canvas[top : top + h, left : left + w] = box
    return canvas


def box_size(h: int, w: int) -> tuple[int, int]:
    """(width, height) of an h x w crop scaled so its longer side is ``BOX``."""
    scale = BOX / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def to_mnist(gray: FloatImage) -> ByteImage:
    """A grayscale float image → a uint8 28×28 MNIST-style digit (light on black).

    Both paths refuse the same images with the same ValueError, where the float-to-integer
    steps would otherwise be undefined: an empty or non-2-D array (``NOT_AN_IMAGE``); NaN
    or infinite pixels once shrunk and smoothed (``NOT_FINITE``: any in the input, or
    finite ones the smoothing overflows); and pixels so far outside 0..1 that the ink map
    overflows (``TOO_LARGE``). ``read_gray`` never makes any of them."""
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(NOT_AN_IMAGE)
    gray = smooth(shrink(gray, WORK_SIDE))
    if KERNEL is not None:  # it checks for itself, in the pass it makes anyway
        return to_mnist_compiled(KERNEL, gray)
    # The array the kernel checks: a NaN or infinity in the input is still one after the
    # area averaging and the Gaussian (every weight is positive), and a finite pixel the
    # smoothing overflows is refused by both paths alike.
    if not np.isfinite(gray).all():
        raise ValueError(NOT_FINITE)
    ink = restroke(crop_to_ink(ink_map(gray)))
    digit = np.clip(resize(ink, box_size(*ink.shape)), 0.0, 1.0)
    top = float(digit.max())
    if top > 0:
        digit = digit / top
    return (center(digit) * 255.0 + 0.5).astype(np.uint8)


def to_mnist_compiled(kernel: Kernel, gray: FloatImage) -> ByteImage:
    """``to_mnist`` after the smoothing, with ``_ink.c``'s two calls around the resize."""
    gray = np.ascontiguousarray(gray, np.float32)
    box = kernel.ink_box(gray, *gray.shape)
    if isinstance(box, int):
        raise BlankImage(NO_CONTRAST if box == kernel.NO_CONTRAST else NO_DIGIT)
    pixels, h, w = box
    ink = np.frombuffer(pixels, np.float32).reshape(h, w)
    digit = resize(ink, box_size(h, w))
    return np.frombuffer(kernel.centre(digit, *digit.shape), np.uint8).reshape(CANVAS, CANVAS)


def prepare_digit(data: bytes) -> ByteImage:
    """Encoded image bytes → uint8 (28, 28), light digit on black, ready to normalise."""
    return to_mnist(read_gray(data))
