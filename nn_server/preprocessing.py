"""Turning a user's digit photo or scan into what MNIST looks like.

Users send dark ink on light paper, photographed or scanned, in any size, mode and
orientation; MNIST is a light digit on black, its longer side scaled to 20 px and centred
by centre of mass in 28×28. ``prepare_digit`` bridges the two: decode safely → grayscale →
polarity → flatten uneven background → crop to the ink → thicken thin strokes → scale to
20 px → centre by mass. MNIST-native input passes through almost unchanged.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

FloatImage = NDArray[np.float32]
ByteImage = NDArray[np.uint8]

SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "TIFF"})
# Formats OpenCV decodes exactly as PIL does for 8-bit grey/RGB pictures.
FAST_FORMATS = frozenset({"JPEG", "PNG", "BMP"})
MIN_SIDE = 28
# Above this many pixels an image is refused before decoding: a 16 MB PNG can otherwise
# claim gigapixels (a decompression bomb). 40 MP covers any phone camera.
MAX_PIXELS = 40_000_000
# Work is done at this size at most: larger photos only cost time, not accuracy.
WORK_SIDE = 256
CANVAS = 28
BOX = 20
INK_THRESHOLD = 0.25
# The background grid has about this many blocks along the shorter side.
BLOCKS = 8
PAPER_PERCENTILE = 25
QUANTILE_SAMPLES = 4096
# MNIST strokes are ~2.5-3 px wide on a 20 px box; thinner pen strokes get thickened.
TARGET_STROKE = 0.11


class ImageError(ValueError):
    """The input cannot be classified; the message says why in the user's terms."""


class UnreadableImage(ImageError):
    """Not an image at all, or a damaged/truncated one."""


class UnsupportedFormat(ImageError):
    """A real image in a format other than JPEG, PNG, BMP or TIFF."""


class ImageTooSmall(ImageError):
    """Smaller than 28×28 pixels."""


class ImageTooLarge(ImageError):
    """More pixels than ``MAX_PIXELS`` (a decompression bomb or an absurd scan)."""


class BlankImage(ImageError):
    """No ink to read: the image is one flat colour."""


def inspect(data: bytes) -> Image.Image:
    """Read only the header: the format, mode and size, refusing what we will not decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image has too many pixels ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise UnreadableImage("data is not a readable image") from None
    if image.format not in SUPPORTED_FORMATS:
        raise UnsupportedFormat(
            f"image format {image.format} is not supported; send JPEG, PNG, BMP or TIFF"
        )
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(
            f"image is {width}x{height} pixels; at most {MAX_PIXELS:,} pixels are accepted"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageTooSmall(f"image is {width}x{height} pixels; at least 28x28 is needed")
    return image


def read_gray(data: bytes) -> FloatImage:
    """Encoded bytes → float32 luminance in 0..1: ``inspect``, ``load``, ``to_gray``; the common
    case (an 8-bit grey or RGB JPEG/PNG/BMP without EXIF or transparency) is decoded by
    OpenCV straight to grey, which halves the cost of the hottest step of a request."""
    image = inspect(data)
    if (
        image.format in FAST_FORMATS
        and image.mode in ("L", "RGB")
        and "exif" not in image.info
        and "transparency" not in image.info
        and complete(image.format, data)
    ):
        gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        if gray is not None and gray.shape == (image.height, image.width):
            return gray.astype(np.float32) * np.float32(1 / 255)
    return to_gray(load(image))


def load(image: Image.Image) -> Image.Image:
    """Decode the pixels ``inspect`` has vouched for; damage shows up only now."""
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UnreadableImage(f"image data is damaged or truncated ({exc})") from None
    return image


def complete(image_format: str | None, data: bytes) -> bool:
    """Whether the file has its end marker; libjpeg would decode a truncated JPEG into grey
    padding without complaint, where PIL reports it."""
    if image_format == "JPEG":
        return data.rstrip(b"\0").endswith(b"\xff\xd9")
    if image_format == "PNG":
        return data[-12:-4] == b"\0\0\0\0IEND"
    return True


def to_gray(image: Image.Image) -> FloatImage:
    """Any PIL image → float32 luminance in 0..1, upright, transparency over white paper."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit grayscale: scale by the type's range, not by 255.
        array = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        return np.clip(array / top, 0.0, 1.0)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    gray = image.convert("L")
    return np.asarray(gray, dtype=np.float32) / 255.0


def shrink(gray: FloatImage, side: int) -> FloatImage:
    """Downscale so the longer side is at most ``side`` (area-averaging keeps thin strokes)."""
    h, w = gray.shape
    scale = side / max(h, w)
    if scale >= 1:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return resize(gray, size)


def resize(image: FloatImage, size: tuple[int, int]) -> FloatImage:
    """Resize to ``size`` (width, height): area averaging to shrink, bicubic to enlarge."""
    h, w = image.shape
    shrinking = size[0] * size[1] < w * h
    method = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=method)  # type: ignore[return-value]


def square(size: int) -> NDArray[np.uint8]:
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


def quantiles(values: FloatImage, *fractions: float) -> list[float]:
    """Several quantiles with one partial sort (``np.percentile`` costs ~100 µs a call), on
    at most ~4,096 evenly spread samples: plenty for a level, and a fixed cost per image."""
    flat = values.ravel()
    if flat.size > 2 * QUANTILE_SAMPLES:
        flat = flat[:: flat.size // QUANTILE_SAMPLES]
    ranks = [min(flat.size - 1, int(f * flat.size)) for f in fractions]
    ordered = np.partition(flat, ranks)
    return [float(ordered[r]) for r in ranks]


def ink_map(gray: FloatImage) -> FloatImage:
    """Ink intensity in 0..1 (1 = ink), with paper at 0 however the page was lit.

    Polarity comes from the border, which in both MNIST and user photos is background.
    Uneven lighting is removed by subtracting an estimate of the paper (``background``).
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    (paper_level,) = quantiles(border, 0.5)
    ink = 1.0 - gray if paper_level > 0.5 else gray
    ink = ink - background(ink)
    # The erosion sits below the paper by the paper's own noise (grain, sensor noise, a
    # lighting gradient inside the window). Measuring from the paper's typical level
    # instead (a low percentile: ink never covers 3/4 of the image) keeps a blank page
    # blank rather than a digit made of noise.
    paper, top = quantiles(ink, PAPER_PERCENTILE / 100, 0.995)
    top -= paper
    if top < 0.05:
        raise BlankImage("no digit found: the image is blank or has no contrast")
    ink = np.clip((ink - paper) / top, 0.0, 1.0)
    # Faint noise (paper grain, JPEG ringing) would widen the crop; drop it.
    ink[ink < 0.15] = 0.0
    return ink


def crop_to_ink(ink: FloatImage) -> FloatImage:
    """The tight box around the ink, ignoring stray specks in otherwise empty rows/columns."""
    mask = ink > INK_THRESHOLD
    rows = np.flatnonzero(mask.sum(axis=1) >= max(1, mask.shape[1] // 200))
    cols = np.flatnonzero(mask.sum(axis=0) >= max(1, mask.shape[0] // 200))
    if rows.size == 0 or cols.size == 0:
        raise BlankImage("no digit found in the image")
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def thicken(ink: FloatImage) -> FloatImage:
    """Dilate pen strokes that would be hairlines at MNIST's scale."""
    side = max(ink.shape)
    length = 2.5 * side  # a digit's stroke length is roughly 2.5× its height
    width = float(np.count_nonzero(ink > INK_THRESHOLD)) / length
    missing = TARGET_STROKE * side - width
    radius = int(missing / 2)
    if radius < 1:
        return ink
    size = min(2 * radius + 1, 31)
    # Pad first: the dilation must not be clipped by the tight crop around the ink.
    padded = cv2.copyMakeBorder(ink, radius, radius, radius, radius, cv2.BORDER_CONSTANT)
    return cv2.dilate(padded, square(size))  # type: ignore[return-value]


def center(box: FloatImage) -> FloatImage:
    """Place a ≤20×20 digit in 28×28 with its centre of mass at the centre, as MNIST does."""
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    h, w = box.shape
    moments = cv2.moments(box)
    total = moments["m00"]
    cy = moments["m01"] / total if total else h / 2
    cx = moments["m10"] / total if total else w / 2
    top = round(CANVAS / 2 - cy)
    left = round(CANVAS / 2 - cx)
    top = min(max(top, 0), CANVAS - h)
    left = min(max(left, 0), CANVAS - w)
    canvas[top : top + h, left : left + w] = box
    return canvas


def to_mnist(gray: FloatImage) -> ByteImage:
    """A grayscale float image → a uint8 28×28 MNIST-style digit (light on black)."""
    ink = crop_to_ink(ink_map(shrink(gray, WORK_SIDE)))
    ink = thicken(ink)
    h, w = ink.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    digit = np.clip(resize(ink, size), 0.0, 1.0)
    top = float(digit.max())
    if top > 0:
        digit = digit / top
    return (center(digit) * 255.0 + 0.5).astype(np.uint8)


def prepare_digit(data: bytes) -> ByteImage:
    """Encoded image bytes → uint8 (28, 28), light digit on black, ready to normalise."""
    return to_mnist(read_gray(data))
