"""``read_gray``'s fast path (``plain_header``: a PNG or JPEG recognised from its header
without PIL) reads every file exactly as ``read_any``, the path through PIL, does: the same
pixels, or the same refusal. It may only pass what ``inspect`` would pass for OpenCV."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from PIL import Image

from nn_server.networks import images
from nn_server.networks.images import ImageError, plain_header, read_any, read_gray
from tests.test_fuzz_images import images as any_images

SAMPLES = Path(__file__).resolve().parents[1] / "images"


def same_reading(data: bytes) -> None:
    def read(reader: object) -> object:
        try:
            return reader(data)  # type: ignore[operator]
        except ImageError as exc:
            return (type(exc), str(exc))

    fast, slow = read(read_gray), read(read_any)
    if isinstance(slow, tuple):
        assert fast == slow
    else:
        assert isinstance(fast, np.ndarray) and fast.dtype == np.float32
        assert np.array_equal(fast, slow)
    if plain_header(data) is not None:  # what the fast path passes, inspect passes too
        image = images.inspect(data)
        assert image.format in ("PNG", "JPEG") and image.mode in ("L", "RGB")
        assert "exif" not in image.info and "transparency" not in image.info
        assert plain_header(data) == image.size


def picture(fmt: str, mode: str = "L", size: tuple[int, int] = (40, 30),
            **options: object) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").convert(mode).save(out, fmt, **options)
    return out.getvalue()


def test_the_samples_read_the_same() -> None:
    files = sorted(p for p in SAMPLES.rglob("*") if p.suffix.lower() in (".png", ".jpg"))
    assert len(files) >= 20
    for path in files:
        same_reading(path.read_bytes())
    assert plain_header((SAMPLES / "0_pen.jpg").read_bytes()) is not None


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "L"), ("PNG", "RGB"), ("JPEG", "L"),
                                           ("JPEG", "RGB")])
def test_plain_pictures_take_the_fast_path(fmt: str, mode: str) -> None:
    data = picture(fmt, mode)
    assert plain_header(data) == (40, 30)
    same_reading(data)


def exif() -> bytes:
    info = Image.Exif()
    info[0x0112] = 6  # orientation: rotated
    return info.tobytes()


@pytest.mark.parametrize("data", [
    picture("PNG", "RGBA"), picture("PNG", "P"), picture("PNG", "LA"), picture("PNG", "I;16"),
    picture("PNG", "L", transparency=0), picture("PNG", "RGB", exif=exif()),
    picture("JPEG", "RGB", exif=exif()), picture("JPEG", "CMYK"),
    picture("PNG", "L", (27, 80)), picture("JPEG", "L", (80, 20)),
    picture("PNG", "L")[:-30], picture("JPEG", "RGB")[:-10], picture("BMP", "L"),
], ids=["rgba", "palette", "la", "16bit", "trns", "png-exif", "jpeg-exif", "cmyk",
        "png-small", "jpeg-small", "png-cut", "jpeg-cut", "bmp"])
def test_what_is_not_plain_is_left_to_pil(data: bytes) -> None:
    assert plain_header(data) is None
    same_reading(data)


def test_a_damaged_chunk_before_the_pixels_is_left_to_pil() -> None:
    data = bytearray(picture("PNG", "L"))
    text = b"tEXtComment\0hello"
    chunk = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text) ^ 1)
    data[33:33] = chunk  # after the signature and IHDR
    assert plain_header(bytes(data)) is None
    same_reading(bytes(data))


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=any_images())
def test_any_file_reads_the_same(data: bytes) -> None:
    same_reading(data)
