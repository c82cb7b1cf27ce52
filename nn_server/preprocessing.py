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

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

FloatImage = NDArray[np.float32]
ByteImage = NDArray[np.uint8]

SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "TIFF"})
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


def decode(data: bytes) -> Image.Image:
    """Open and fully decode ``data``, refusing what we cannot or should not read."""
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
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UnreadableImage(f"image data is damaged or truncated ({exc})") from None
    return image


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
    image = Image.fromarray(gray, mode="F").resize(size, Image.Resampling.BOX)
    return np.asarray(image, dtype=np.float32)


def background(ink: FloatImage) -> FloatImage:
    """The paper's level under the ink, varying smoothly with the lighting.

    A grey-scale erosion on a coarse grid: the minimum of each block, then of each 3×3
    neighbourhood of blocks (so a block lying inside a thick stroke still sees paper), then
    smoothly upsampled. Strokes are narrower than the window, so they vanish from it. This
    is ~100× cheaper than PIL's rank filters, which dominated the request path.
    """
    h, w = ink.shape
    block = max(2, min(h, w) // BLOCKS)
    rows, cols = -(-h // block), -(-w // block)
    padded = np.pad(ink, ((0, rows * block - h), (0, cols * block - w)), mode="edge")
    mins = padded.reshape(rows, block, cols, block).min(axis=(1, 3))
    ring = np.pad(mins, 1, mode="edge")
    mins = np.min(
        [ring[dy : dy + rows, dx : dx + cols] for dy in range(3) for dx in range(3)], axis=0
    )
    grid = Image.fromarray(mins.astype(np.float32), mode="F")
    return np.asarray(grid.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)


def ink_map(gray: FloatImage) -> FloatImage:
    """Ink intensity in 0..1 (1 = ink), with paper at 0 however the page was lit.

    Polarity comes from the border, which in both MNIST and user photos is background.
    Uneven lighting is removed by subtracting an estimate of the paper (``background``).
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = 1.0 - gray if float(np.median(border)) > 0.5 else gray.copy()
    ink = ink - background(ink)
    # The block-minimum estimate sits below the paper by the paper's own noise (grain,
    # sensor noise, a lighting gradient inside a block). Measuring from the paper's
    # typical level instead (a low percentile: ink never covers 3/4 of the image) keeps
    # a blank page blank rather than a digit made of noise.
    ink = np.clip(ink - float(np.percentile(ink, PAPER_PERCENTILE)), 0.0, None)
    top = float(np.percentile(ink, 99.5))
    if top < 0.05:
        raise BlankImage("no digit found: the image is blank or has no contrast")
    ink = np.clip(ink / top, 0.0, 1.0)
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
    width = float((ink > INK_THRESHOLD).sum()) / length
    missing = TARGET_STROKE * side - width
    radius = int(missing / 2)
    if radius < 1:
        return ink
    size = min(2 * radius + 1, 31)
    dilated = Image.fromarray(ink, mode="F").filter(ImageFilter.MaxFilter(size))
    return np.asarray(dilated, dtype=np.float32)


def center(box: FloatImage) -> FloatImage:
    """Place a ≤20×20 digit in 28×28 with its centre of mass at the centre, as MNIST does."""
    canvas = np.zeros((CANVAS, CANVAS), np.float32)
    h, w = box.shape
    total = float(box.sum())
    ys, xs = np.indices(box.shape)
    cy = float((ys * box).sum()) / total if total else h / 2
    cx = float((xs * box).sum()) / total if total else w / 2
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
    box = Image.fromarray(ink, mode="F").resize(size, Image.Resampling.LANCZOS)
    digit = np.clip(np.asarray(box, dtype=np.float32), 0.0, 1.0)
    top = float(digit.max())
    if top > 0:
        digit = digit / top
    return (center(digit) * 255.0 + 0.5).astype(np.uint8)


def prepare_digit(data: bytes) -> ByteImage:
    """Encoded image bytes → uint8 (28, 28), light digit on black, ready to normalise."""
    return to_mnist(to_gray(decode(data)))
