"""Preprocessing + LeNet on real image bytes, no HTTP: what a user's upload turns into.

The network is the shipped one (``LeNet().initialize()``), so these tests also say whether
the weights a fresh install gets can read the digits people send.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from nn_server.networks import datasets
from nn_server.networks.digits import prepare_digit
from nn_server.networks.images import (
    BlankImage,
    ImageError,
    ImageTooLarge,
    ImageTooSmall,
    UnreadableImage,
    UnsupportedFormat,
)
from nn_server.networks.lenet import MNIST, LeNet

ROOT = Path(__file__).resolve().parents[1]
IMAGES = sorted(
    p for p in (ROOT / "images").iterdir() if p.suffix in {".jpg", ".png", ".bmp", ".tiff"}
)
# tests/conftest.py has made sure the files are there and set NN_DATA_DIR.
DATA_DIR = datasets.data_dir()
EXIF_ORIENTATION = 0x0112
# The bar for MNIST digits rendered as user photos, and the sample it is measured on.
VARIANT_ACCURACY = 0.98
VARIANT_SAMPLES = 600
NATIVE_ACCURACY = 0.99
NATIVE_SAMPLES = 500


@pytest.fixture(scope="module")
def net() -> LeNet:
    network = LeNet()
    network.initialize()
    return network


@pytest.fixture(scope="module")
def mnist_test() -> datasets.Split:
    # Fail, never skip: CI points NN_DATA_DIR at the shared copy, so missing data is a bug.
    return datasets.load_split(MNIST, "test", DATA_DIR, allow_download=False)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def label_of(net: LeNet, data: bytes) -> str:
    return net.classify([data])[0].label


# -- the sample images users are shown ---------------------------------------------------


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_sample_image_is_classified_as_its_digit(net: LeNet, path: Path) -> None:
    prediction = net.classify([path.read_bytes()])[0]
    assert prediction.label == path.name[0], (
        f"{path.name} read as {prediction.label} ({prediction.confidence:.1%})"
    )


def test_samples_cover_formats_modes_and_sizes() -> None:
    """images/ shows every kind of file the server promises to read, each digit 2-3 times."""
    opened = [(p, Image.open(p)) for p in IMAGES]
    formats = {image.format for _, image in opened}
    modes = {image.mode for _, image in opened}
    rotated = [p.name for p, image in opened if image.getexif().get(EXIF_ORIENTATION, 1) != 1]
    assert {"JPEG", "PNG", "BMP", "TIFF"} <= formats
    assert {"RGB", "L", "RGBA", "LA", "P", "I;16"} <= modes
    assert rotated, "no EXIF-rotated sample"
    assert all(min(image.size) >= 28 for _, image in opened)
    assert sorted({p.name[0] for p in IMAGES}) == [str(d) for d in range(10)]
    assert sum(p.stat().st_size for p in IMAGES) < 1_000_000


# -- modes and orientation ---------------------------------------------------------------


def upright_seven() -> Image.Image:
    return Image.open(ROOT / "images" / "7_pen.jpg").convert("RGB")


def as_rgba(image: Image.Image) -> Image.Image:
    """Ink on a transparent layer, as drawing apps export it; hidden pixels are black."""
    alpha = 255 - np.asarray(image.convert("L"))
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    layer.putalpha(Image.fromarray(alpha.astype(np.uint8)))
    return layer


def as_16bit(image: Image.Image) -> Image.Image:
    gray = np.asarray(image.convert("L"), np.uint16) * 257
    return Image.fromarray(gray)


def as_float(image: Image.Image, top: float) -> Image.Image:
    """A 32-bit float image (mode "F"), white at ``top``: 1.0 as scientific software
    writes it, 255.0 as a converted 8-bit scan."""
    return Image.fromarray(np.asarray(image.convert("L"), np.float32) * np.float32(top / 255))


MODES: dict[str, Callable[[], bytes]] = {
    "RGBA": lambda: encode(as_rgba(upright_seven()), "PNG"),
    "LA": lambda: encode(as_rgba(upright_seven()).convert("LA"), "PNG"),
    "P": lambda: encode(upright_seven().quantize(colors=8), "PNG"),
    "P+transparency": lambda: encode(as_rgba(upright_seven()).quantize(colors=8), "PNG"),
    "I;16 PNG": lambda: encode(as_16bit(upright_seven()), "PNG"),
    "I;16 TIFF": lambda: encode(as_16bit(upright_seven()), "TIFF"),
    "float 0..1 TIFF": lambda: encode(as_float(upright_seven(), 1.0), "TIFF"),
    "float 0..255 TIFF": lambda: encode(as_float(upright_seven(), 255.0), "TIFF"),
    "CMYK JPEG": lambda: encode(upright_seven().convert("CMYK"), "JPEG", quality=90),
    "1-bit BMP": lambda: encode(
        upright_seven().convert("L").point(lambda v: 255 * (v > 128)).convert("1"), "BMP"
    ),
}


@pytest.mark.parametrize("mode", MODES)
def test_image_modes_are_handled(net: LeNet, mode: str) -> None:
    assert label_of(net, MODES[mode]()) == "7"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_is_applied(net: LeNet, fmt: str) -> None:
    """A phone held sideways stores the pixels turned and says so in EXIF; we turn them back."""
    upright = upright_seven()
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90° clockwise to display"
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    tagged = encode(stored, fmt, exif=exif.tobytes())
    plain = encode(upright, fmt)
    assert label_of(net, tagged) == "7"
    # The same digit reaches the network, not merely the same label.
    diff = np.abs(prepare_digit(tagged).astype(int) - prepare_digit(plain).astype(int))
    assert diff.mean() < 8, diff.mean()


def test_mnist_native_digits_still_classify(net: LeNet, mnist_test: datasets.Split) -> None:
    """White on black, 28×28: what MNIST itself looks like must pass through unharmed."""
    rng = np.random.default_rng(7)
    picks = rng.choice(len(mnist_test), NATIVE_SAMPLES, replace=False)
    files = [encode(Image.fromarray(mnist_test.images[i]), "PNG") for i in picks]
    predictions = net.classify(files)
    correct = sum(
        p.label == str(mnist_test.labels[i]) for p, i in zip(predictions, picks, strict=True)
    )
    assert correct / NATIVE_SAMPLES >= NATIVE_ACCURACY, f"{correct}/{NATIVE_SAMPLES}"


# -- MNIST digits rendered as user photos: the issue's ≥ 98 % on ≥ 500 -------------------


def as_user_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """One MNIST digit as someone might photograph it: dark ink on light, tinted paper, on a
    larger canvas, off-centre, sometimes unevenly lit, JPEG-compressed."""
    ys, xs = np.nonzero(digit > 30)
    ink = Image.fromarray(digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    width, height = (int(v) for v in rng.integers(40, 121, size=2))
    fill = rng.uniform(0.5, 0.85)
    scale = fill * min(width, height) / max(ink.size)
    size = (max(1, round(ink.width * scale)), max(1, round(ink.height * scale)))
    ink = ink.resize(size, Image.Resampling.BICUBIC)
    left = int(rng.integers(1, width - ink.width))
    top = int(rng.integers(1, height - ink.height))
    cover = np.zeros((height, width), np.float32)
    cover[top : top + ink.height, left : left + ink.width] = np.asarray(ink, np.float32) / 255
    cover = np.clip(cover, 0, 1)[..., None]
    paper = rng.uniform(215, 255, size=3).astype(np.float32)
    pen = rng.uniform(0, 70, size=3).astype(np.float32)
    rgb = paper * (1 - cover) + pen * cover
    if rng.random() < 0.5:
        # A shadow across the page: brightness falls off linearly in a random direction.
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (xx / width - 0.5) * np.cos(angle) + (yy / height - 0.5) * np.sin(angle)
        rgb *= (1 - rng.uniform(0.1, 0.35) * (ramp + 0.71) / 1.42)[..., None]
    rgb += rng.normal(0, rng.uniform(0, 4), size=rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    return encode(image, "JPEG", quality=int(rng.integers(60, 96)))


def test_mnist_digits_as_user_photos(net: LeNet, mnist_test: datasets.Split) -> None:
    rng = np.random.default_rng(2024)
    picks = rng.choice(len(mnist_test), VARIANT_SAMPLES, replace=False)
    files = [as_user_photo(mnist_test.images[i], rng) for i in picks]
    predictions = net.classify(files)
    wrong = [
        (int(i), int(mnist_test.labels[i]), p.label)
        for p, i in zip(predictions, picks, strict=True)
        if p.label != str(mnist_test.labels[i])
    ]
    accuracy = 1 - len(wrong) / VARIANT_SAMPLES
    # Shown with -s: the figure the issue asks to report, and which digits were misread.
    print(f"user-photo variants: {accuracy:.2%} of {VARIANT_SAMPLES}; (index, true, read): {wrong}")
    assert accuracy >= VARIANT_ACCURACY, wrong


# -- what users can get wrong ------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A ~100-byte PNG whose header claims ``width``×``height``: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def sample_bytes(name: str = "0_pen.jpg") -> bytes:
    return (ROOT / "images" / name).read_bytes()


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, this is not an image", b"%PDF-1.4\n" + bytes(200), bytes(range(256)) * 4],
    ids=["empty", "text", "pdf", "noise"],
)
def test_not_an_image_is_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableImage):
        prepare_digit(data)


@pytest.mark.parametrize("name", ["0_pen.jpg", "0_marker.png", "4_pen.tiff"])
def test_truncated_file_is_unreadable(name: str) -> None:
    data = sample_bytes(name)
    with pytest.raises(UnreadableImage):
        prepare_digit(data[: len(data) // 2])


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PPM"])
def test_other_formats_are_unsupported(fmt: str) -> None:
    data = encode(upright_seven(), fmt)
    with pytest.raises(UnsupportedFormat, match="JPEG, PNG, BMP or TIFF"):
        prepare_digit(data)


@pytest.mark.parametrize("size", [(27, 27), (27, 200), (300, 20)])
def test_too_small_image_is_refused(size: tuple[int, int]) -> None:
    data = encode(Image.new("L", size, 255), "PNG")
    with pytest.raises(ImageTooSmall, match="28x28"):
        prepare_digit(data)


@pytest.mark.parametrize("side", [100_000, 9_000], ids=["gigapixel", "81-megapixel"])
def test_decompression_bomb_is_refused_fast(side: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = png_claiming(side, side)
    assert len(data) < 200

    def no_pixels(*args: object) -> None:
        raise AssertionError("the pixels were decoded")

    # Refused from the header alone, before a single pixel is decoded or allocated.
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_pixels)
    monkeypatch.setattr(Image.Image, "load", no_pixels)
    monkeypatch.setattr(Image.core, "new", no_pixels)
    monkeypatch.setattr(cv2, "imdecode", no_pixels)
    with pytest.raises(ImageTooLarge):
        prepare_digit(data)


def test_large_but_reasonable_photo_is_accepted(net: LeNet) -> None:
    """A 12-megapixel phone photo of a digit is fine: the limit is for bombs, not cameras."""
    small = upright_seven().resize((400, 300))
    photo = small.resize((4000, 3000), Image.Resampling.BILINEAR)
    assert label_of(net, encode(photo, "JPEG", quality=80)) == "7"


def gradient_page() -> Image.Image:
    yy, xx = np.mgrid[0:120, 0:100]
    return Image.fromarray((250 - 0.6 * xx - 0.3 * yy).astype(np.uint8))


def noisy_page() -> Image.Image:
    noise = np.random.default_rng(0).normal(235, 3, size=(90, 90))
    return Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        (Image.new("RGB", (64, 64), "white"), "PNG"),
        (Image.new("L", (80, 50), 128), "JPEG"),
        (Image.new("RGB", (40, 40), "black"), "BMP"),
        (Image.new("RGBA", (50, 50), (0, 0, 0, 0)), "PNG"),
        (gradient_page(), "JPEG"),
        (noisy_page(), "TIFF"),
    ],
    ids=["white", "grey", "black", "transparent", "lit-unevenly", "paper-grain"],
)
def test_blank_image_is_refused(image: Image.Image, fmt: str) -> None:
    with pytest.raises(BlankImage):
        prepare_digit(encode(image, fmt))


def test_errors_share_one_base_class() -> None:
    """The server maps ImageError to a 4xx; every specific error must be one."""
    for cls in (UnreadableImage, UnsupportedFormat, ImageTooSmall, ImageTooLarge, BlankImage):
        assert issubclass(cls, ImageError)


def test_an_image_no_decoder_can_convert_fails_alone(net: LeNet) -> None:
    """A LAB TIFF makes PIL raise a plain ValueError deep in conversion; in a batch it must
    come back as that image's UnreadableImage while its neighbours are classified."""
    lab = encode(Image.new("LAB", (40, 40)), "TIFF")
    good = sample_bytes("7_pen.jpg")
    results = net.classify_each([good, lab, good])
    assert isinstance(results[1], UnreadableImage)
    assert [r.label for r in (results[0], results[2])] == ["7", "7"]  # type: ignore[union-attr]
    with pytest.raises(UnreadableImage):
        net.classify([lab])


def test_low_range_16_bit_image_is_not_blank(net: LeNet) -> None:
    """8-bit values stored in a 16-bit PNG (common from scanners) keep their contrast."""
    gray = np.asarray(upright_seven().convert("L"), np.uint16)  # values 0..255 only
    assert label_of(net, encode(Image.fromarray(gray), "PNG")) == "7"


def test_grain_around_faint_ink_is_paper() -> None:
    """A pencil "1" (0.3 below the paper) on grainy paper (sigma 0.03), too small to be
    smoothed: grain above ``FAINT`` but within three sigmas of the paper stays paper.
    With ``FAINT`` alone a quarter of the pixels away from the stroke were lit (0.245-0.249
    on these four pages), a speckled square around the digit."""
    lit = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        page = np.full((70, 52), 0.85, np.float32)
        cv2.line(page, (30, 8), (24, 62), (0.55,), 3, cv2.LINE_AA)
        page += rng.normal(0, 0.03, page.shape).astype(np.float32)
        digit = prepare_digit(encode(Image.fromarray((np.clip(page, 0, 1) * 255).astype(np.uint8)),
                                     "PNG"))
        stroke = cv2.dilate((digit > 128).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        lit.append(float((digit[~stroke] > 0).mean()))
    assert max(lit) < 0.23 and np.mean(lit) < 0.2, lit


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_big_photo_is_read_at_reduced_scale(net: LeNet, fmt: str) -> None:
    big = upright_seven().convert("RGB").resize((4000, 3000))
    assert label_of(net, encode(big, fmt)) == "7"
