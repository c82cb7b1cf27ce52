"""Reading users' images safely: the part every network's preprocessing shares.

``read_gray`` turns the bytes of a JPEG, PNG, BMP or TIFF file (any size, mode and
orientation) into float32 luminance in 0..1, refusing what it will not decode before it
costs anything: unsupported formats, images under 28x28, and decompression bombs (a small
file claiming gigapixels) are rejected from the header alone. Every refusal is an
``ImageError`` whose message says why in the user's terms; the server answers it as 400,
or 415 for a format we do not read. The helpers below it (resizing, quantiles, the
paper's level at the border) are what the networks' own preprocessing builds on.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from nn_server.core.errors import Invalid, Unsupported

FloatImage = NDArray[np.float32]
ByteImage = NDArray[np.uint8]

SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "TIFF"})
# Formats OpenCV decodes exactly as PIL does for 8-bit grey/RGB pictures.
FAST_FORMATS = frozenset({"JPEG", "PNG", "BMP"})
REDUCED_GRAY = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}
MIN_SIDE = 28
# Above this many pixels an image is refused before decoding: a 16 MB PNG can otherwise
# claim gigapixels (a decompression bomb). 40 MP covers any phone camera.
MAX_PIXELS = 40_000_000
# Work is done at this size at most: larger photos only cost time, not accuracy.
WORK_SIDE = 256
QUANTILE_SAMPLES = 4096


class ImageError(Invalid):
    """The input cannot be classified; the message says why in the user's terms."""


class UnreadableImage(ImageError):
    """Not an image at all, or a damaged/truncated one."""


class UnsupportedFormat(ImageError, Unsupported):
    """A real image in a format other than JPEG, PNG, BMP or TIFF."""


class ImageTooSmall(ImageError):
    """Smaller than 28×28 pixels."""


class ImageTooLarge(ImageError):
    """More pixels than ``MAX_PIXELS`` (a decompression bomb or an absurd scan)."""


class BlankImage(ImageError):
    """Nothing to classify: the image is one flat colour, or has no contrast."""


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
    """Encoded bytes → float32 luminance in 0..1. The common case (an 8-bit grey or RGB
    JPEG or PNG without EXIF or transparency, whole) is recognised from its header here and
    decoded by OpenCV straight to grey; anything else, or anything OpenCV will not decode,
    takes ``read_any``. Both give the same pixels: the fast path only skips PIL's header
    parsing (~12 µs, a tenth of a digit's preprocessing)."""
    header = plain_header(data)
    if header is not None:
        gray = decode_gray(data, *header)
        if gray is not None:
            return gray
    return read_any(data)


def read_any(data: bytes) -> FloatImage:
    """``read_gray`` for any file: ``inspect``, ``load``, ``to_gray``, with OpenCV's decode
    for the formats and modes it reads exactly as PIL does."""
    image = inspect(data)
    if (
        image.format in FAST_FORMATS
        and image.mode in ("L", "RGB")
        and "exif" not in image.info
        and "transparency" not in image.info
        and complete(image.format, data)
    ):
        gray = decode_gray(data, image.width, image.height)
        if gray is not None:
            return gray
    factor = reduction(image.width, image.height)
    if factor > 1 and image.format in ("JPEG", "MPO"):
        image.draft(image.mode, (image.width // factor, image.height // factor))
    return to_gray(load(image))


def decode_gray(data: bytes, width: int, height: int) -> FloatImage | None:
    """OpenCV's decode straight to grey, at 1/2, 1/4 or 1/8 scale for a big photo (libjpeg
    does that almost for free: a 12 MP photo costs ~10 ms, not ~300 ms and ~50 MB, as work
    happens at WORK_SIDE at most); None if OpenCV will not decode it."""
    factor = reduction(width, height)
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED_GRAY[factor])
    if gray is None or abs(gray.shape[0] * factor - height) >= 2 * factor:
        return None
    return gray.astype(np.float32) * np.float32(1 / 255)  # type: ignore[no-any-return]


# PNG chunks that may come before the pixels of a plain grey or RGB picture: none of them
# changes its pixels or makes PIL see transparency or EXIF.
PLAIN_PNG_CHUNKS = frozenset({b"IHDR", b"sRGB", b"gAMA", b"cHRM", b"pHYs", b"iCCP", b"tEXt",
                              b"zTXt", b"iTXt", b"tIME", b"bKGD", b"sBIT"})
# JPEG frames OpenCV and PIL both read as plain 8-bit pictures: baseline, extended and
# progressive Huffman.
PLAIN_JPEG_FRAMES = frozenset({0xC0, 0xC1, 0xC2})


def plain_header(data: bytes) -> tuple[int, int] | None:
    """(width, height) when ``data`` is a whole, plain picture ``inspect`` would pass for
    OpenCV's decode: a PNG or JPEG, 8-bit grey or RGB, no transparency, EXIF, Adobe colour
    transform or MPO index, 28 px to ``MAX_PIXELS``. None for anything else or anything
    odd, which leaves it to ``inspect`` and PIL to judge."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        image_format, size = "PNG", png_header(data)
    elif data.startswith(b"\xff\xd8\xff"):
        image_format, size = "JPEG", jpeg_header(data)
    else:
        return None
    if size is None or min(size) < MIN_SIDE or size[0] * size[1] > MAX_PIXELS:
        return None
    return size if complete(image_format, data) else None


def png_header(data: bytes) -> tuple[int, int] | None:
    at, size = 8, None
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        body = data[at + 8 : at + 8 + length]
        if len(body) < length or length > 1 << 24:
            return None
        if kind == b"IDAT":
            return size
        (crc,) = struct.unpack_from(">I", data, at + 8 + length) if \
            at + 12 + length <= len(data) else (None,)
        if kind not in PLAIN_PNG_CHUNKS or crc != zlib.crc32(kind + body):
            return None
        if kind == b"IHDR":
            if at != 8 or length != 13:
                return None
            width, height, depth, colour, compression, filtering, interlace = \
                struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (0, 2) or compression or filtering or interlace > 1:
                return None
            size = (width, height)
        at += 12 + length
    return None


def jpeg_header(data: bytes) -> tuple[int, int] | None:
    at, size = 2, None
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        (length,) = struct.unpack_from(">H", data, at + 2)
        body = data[at + 4 : at + 2 + length]
        if length < 2 or len(body) < length - 2:
            return None
        if marker == 0xDA:  # start of scan: the header is over
            return size
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if marker not in PLAIN_JPEG_FRAMES or size is not None or len(body) < 6:
                return None
            precision, height, width, components = struct.unpack_from(">BHHB", body)
            if precision != 8 or components not in (1, 3):
                return None
            size = (width, height)
        elif (
            (marker == 0xE1 and body.startswith(b"Exif"))
            or (marker == 0xE2 and body.startswith(b"MPF"))
            or marker == 0xEE  # Adobe's: a colour transform PIL and OpenCV may read apart
            or not (0xE0 <= marker <= 0xEF or marker in (0xDB, 0xC4, 0xDD, 0xFE))
        ):
            return None
        at += 2 + length
    return None


def reduction(width: int, height: int) -> int:
    """The largest of 1, 2, 4, 8 that keeps the longer side at least ``WORK_SIDE``."""
    factor = 1
    while factor < 8 and max(width, height) // (2 * factor) >= WORK_SIDE:
        factor *= 2
    return factor


def load(image: Image.Image) -> Image.Image:
    """Decode the pixels ``inspect`` has vouched for; damage shows up only now."""
    # Pillow's switch is process-wide, and importing gluoncv turns it on (for its own data
    # sets); a truncated upload must be refused, never padded with grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
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
        if not np.isfinite(array).all():  # a float TIFF can hold them; no pixel means NaN
            raise UnreadableImage("image holds NaN or infinite pixel values")
        # By the values' range, not the mode: 8-bit data is often stored as 16-bit, and
        # float images come as 0..1 (scientific software) as well as 0..255.
        peak = float(array.max())
        top = 1.0 if image.mode == "F" and peak <= 1.0 else 65535.0 if peak > 255 else 255.0
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


def quantiles(values: FloatImage, *fractions: float) -> list[float]:
    """Several quantiles with one partial sort (``np.percentile`` costs ~100 µs a call), on
    at most ~4,096 evenly spread samples: plenty for a level, and a fixed cost per image."""
    flat = values.ravel()
    if flat.size > 2 * QUANTILE_SAMPLES:
        flat = flat[:: flat.size // QUANTILE_SAMPLES]
    ranks = [min(flat.size - 1, int(f * flat.size)) for f in fractions]
    ordered = np.partition(flat, ranks)
    return [float(ordered[r]) for r in ranks]


def border_level(gray: FloatImage) -> float:
    """The median of the outermost rows and columns: in a photo or scan of one object,
    and in MNIST-style images alike, the border is background, so this is its level."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    (level,) = quantiles(border, 0.5)
    return level
