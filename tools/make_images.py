"""Draw the sample digits in ``images/``: handwriting-like 0–9 as users would photograph them.

Every digit is drawn here from pen strokes (jittered polylines, arcs and curves with a
varying pen width), never taken from MNIST, so the samples test the preprocessing on
input the network has not seen. Each file is then "photographed": paper tint, uneven
lighting, slight rotation, sensor noise, and saved in one of the formats and modes users
send (JPEG, PNG, BMP, TIFF; RGB, L, RGBA, LA, palette, 16-bit, EXIF-rotated).

    python tools/make_images.py [--out images]

The output is deterministic for a given Pillow/numpy version; file names start with the
digit they show, which is what the tests check against.
"""

from __future__ import annotations

import argparse
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

Pixels = NDArray[np.float32]

Point = tuple[float, float]
Stroke = list[Point]

# The longest side is rendered at least this large, then downsampled: anti-aliased edges
# like a camera's, even for a 28 px image.
RENDER_SIDE = 640
WHITE: tuple[int, int, int] = (255, 255, 255)


# -- glyphs: strokes in a unit box (x right, y down, height 1), as a hand would draw them --


def arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float) -> Stroke:
    """Points along an ellipse from ``start`` to ``stop`` degrees (0 = right, 90 = down)."""
    steps = max(8, int(abs(stop - start) / 4))
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(start, stop, steps)
    ]


def line(*points: Point) -> Stroke:
    """A polyline, subdivided so pen-width changes and jitter look continuous."""
    out: Stroke = []
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        steps = max(2, int(math.hypot(x1 - x0, y1 - y0) * 60))
        out.extend((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t) for t in np.linspace(0, 1, steps))
    return out


def curve(p0: Point, p1: Point, p2: Point) -> Stroke:
    """A quadratic Bézier from ``p0`` to ``p2`` pulled towards ``p1``."""
    return [
        (
            (1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * p1[0] + t**2 * p2[0],
            (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * p1[1] + t**2 * p2[1],
        )
        for t in np.linspace(0, 1, 40)
    ]


GLYPHS: dict[str, list[Stroke]] = {
    "0": [arc(0.35, 0.5, 0.27, 0.48, -100, 275)],
    "1": [line((0.40, 0.0), (0.34, 1.0))],
    "1flag": [line((0.20, 0.20), (0.42, 0.0), (0.36, 1.0))],
    "2": [arc(0.35, 0.28, 0.29, 0.26, 195, 400) + line((0.57, 0.45), (0.03, 0.98), (0.74, 0.96))],
    "3": [arc(0.33, 0.25, 0.26, 0.23, 200, 470) + arc(0.33, 0.72, 0.30, 0.27, 250, 520)],
    "4": [line((0.50, 0.0), (0.03, 0.66), (0.74, 0.66)), line((0.56, 0.22), (0.53, 1.0))],
    "4open": [line((0.10, 0.0), (0.05, 0.60), (0.72, 0.58)), line((0.58, 0.02), (0.56, 1.0))],
    "5": [
        line((0.70, 0.02), (0.16, 0.04)),
        line((0.16, 0.04), (0.12, 0.46)) + arc(0.36, 0.68, 0.31, 0.30, 225, 515),
    ],
    "6": [curve((0.62, 0.0), (0.08, 0.25), (0.08, 0.73)) + arc(0.35, 0.73, 0.27, 0.25, 180, -175)],
    "7": [line((0.02, 0.05), (0.72, 0.03)) + curve((0.72, 0.03), (0.45, 0.45), (0.30, 1.0))],
    "8": [
        arc(0.36, 0.26, 0.22, 0.24, 90, 450),
        arc(0.36, 0.74, 0.28, 0.25, -90, 275),
    ],
    "9": [
        arc(0.35, 0.28, 0.27, 0.27, 0, 370),
        curve((0.62, 0.28), (0.63, 0.65), (0.54, 1.0)),
    ],
}


# -- one sample: how it is written and how it is photographed --------------------------


@dataclass(frozen=True)
class Sample:
    name: str
    glyph: str
    size: tuple[int, int]
    pen: float
    """Pen width as a fraction of the digit's height (MNIST strokes are ~0.13)."""
    seed: int
    paper: tuple[int, int, int] = WHITE
    ink: tuple[int, int, int] = (20, 20, 30)
    fill: float = 0.75
    """Digit height as a fraction of the image height."""
    rotate: float = 0.0
    lighting: str = "none"
    """``none``, ``linear`` (a side in shadow) or ``radial`` (a lamp's hot spot)."""
    noise: float = 3.0
    mode: str = "RGB"
    """The saved mode; ``exif`` stores the pixels turned and an orientation tag."""
    quality: int = 88


SAMPLES: tuple[Sample, ...] = (
    Sample("0_pen.jpg", "0", (300, 300), 0.05, 1, ink=(25, 35, 110)),
    Sample("0_marker.png", "0", (120, 140), 0.13, 2, paper=(250, 243, 225)),
    Sample("0_small.bmp", "0", (28, 28), 0.14, 3, mode="L", fill=0.8, noise=0),
    Sample("1_pen.png", "1flag", (150, 200), 0.06, 4, rotate=-4),
    Sample("1_tinted.jpg", "1", (360, 400), 0.05, 5, paper=(250, 240, 170), lighting="linear"),
    Sample("1_scan.tiff", "1flag", (64, 64), 0.1, 6, mode="L"),
    Sample("2_pen.jpg", "2", (280, 320), 0.045, 7, ink=(20, 40, 130), rotate=5),
    Sample("2_rgba.png", "2", (96, 96), 0.11, 8, mode="RGBA"),
    Sample("2_gradient.bmp", "2", (90, 80), 0.1, 9, lighting="linear", paper=(235, 240, 250)),
    Sample("3_pen.bmp", "3", (72, 96), 0.08, 10, mode="L"),
    Sample("3_pencil.jpg", "3", (260, 260), 0.06, 11, ink=(110, 110, 115), lighting="radial"),
    Sample("3_palette.png", "3", (110, 110), 0.1, 12, mode="P", paper=(255, 250, 235)),
    Sample("4_pen.tiff", "4", (120, 160), 0.07, 13, mode="L", rotate=3),
    Sample("4_exif.jpg", "4open", (240, 320), 0.06, 14, mode="exif", lighting="linear"),
    Sample("4_small.png", "4", (32, 30), 0.13, 15, fill=0.85, noise=0),
    Sample("5_pen.jpg", "5", (220, 260), 0.05, 16, rotate=-6),
    Sample("5_16bit.png", "5", (80, 100), 0.1, 17, mode="I;16"),
    Sample("5_tinted.tiff", "5", (100, 100), 0.09, 18, paper=(250, 225, 230)),
    Sample("6_pen.png", "6", (100, 130), 0.08, 19, ink=(30, 30, 120)),
    Sample("6_shadow.jpg", "6", (400, 360), 0.04, 20, lighting="radial", rotate=4),
    Sample("6_gray.bmp", "6", (56, 56), 0.12, 21, mode="L", noise=0),
    Sample("7_pen.jpg", "7", (300, 280), 0.05, 22, ink=(15, 15, 15), rotate=-3),
    Sample("7_blue.png", "7", (90, 110), 0.09, 23, ink=(30, 60, 170), paper=(240, 248, 255)),
    Sample("7_scan.tiff", "7", (48, 48), 0.12, 24, mode="L"),
    Sample("8_pen.bmp", "8", (64, 80), 0.09, 25, mode="L"),
    Sample("8_marker.jpg", "8", (320, 320), 0.11, 26, paper=(245, 245, 235), lighting="linear"),
    Sample("8_tinted.png", "8", (100, 120), 0.08, 27, paper=(225, 245, 225)),
    Sample("9_pen.tiff", "9", (110, 140), 0.07, 28, mode="L"),
    Sample("9_photo.jpg", "9", (300, 340), 0.05, 29, lighting="radial", rotate=-5),
    Sample("9_la.png", "9", (80, 80), 0.11, 30, mode="LA"),
)


# -- drawing -------------------------------------------------------------------------


def handwrite(strokes: Sequence[Stroke], rng: np.random.Generator, rotate: float) -> list[Stroke]:
    """The glyph as one person writes it: slanted, squeezed, turned and wobbly."""
    shear = rng.uniform(-0.15, 0.2)
    squeeze = rng.uniform(0.85, 1.1)
    turn = math.radians(rotate + rng.uniform(-3, 3))
    cos, sin = math.cos(turn), math.sin(turn)
    out: list[Stroke] = []
    for stroke in strokes:
        pts = np.array(stroke, dtype=np.float64)
        # A slow wobble (few random control points, interpolated) rather than per-point
        # noise: hands drift, they do not jitter at the pixel level.
        knots = rng.normal(0, 0.012, size=(6, 2))
        t = np.linspace(0, 5, len(pts))
        wobble = np.stack([np.interp(t, np.arange(6), knots[:, i]) for i in range(2)], axis=1)
        pts = pts + wobble
        x = (pts[:, 0] + shear * (0.5 - pts[:, 1])) * squeeze
        y = pts[:, 1]
        out.append(list(zip(x * cos - y * sin, x * sin + y * cos, strict=True)))
    return out


def ink_coverage(sample: Sample, rng: np.random.Generator) -> Pixels:
    """Ink coverage 0..1 at the final size: the strokes drawn large, then downsampled."""
    width, height = sample.size
    scale = max(1, math.ceil(RENDER_SIDE / max(width, height)))
    big_w, big_h = width * scale, height * scale
    strokes = handwrite(GLYPHS[sample.glyph], rng, sample.rotate)
    xs = [x for s in strokes for x, _ in s]
    ys = [y for s in strokes for _, y in s]
    glyph_h = max(ys) - min(ys)
    glyph_w = max(xs) - min(xs)
    unit = min(sample.fill * big_h / glyph_h, 0.9 * big_w / glyph_w)
    # Not quite centred: people do not write in the middle of the frame.
    cx = big_w / 2 + rng.uniform(-0.06, 0.06) * big_w
    cy = big_h / 2 + rng.uniform(-0.05, 0.05) * big_h
    ox = cx - unit * (min(xs) + max(xs)) / 2
    oy = cy - unit * (min(ys) + max(ys)) / 2
    canvas = Image.new("L", (big_w, big_h), 0)
    draw = ImageDraw.Draw(canvas)
    base = sample.pen * unit * glyph_h
    for stroke in strokes:
        pts = [(ox + unit * x, oy + unit * y) for x, y in stroke]
        # Pressure varies along a stroke; round dabs at every point make the joins smooth.
        pressure = np.interp(np.linspace(0, 3, len(pts)), range(4), rng.uniform(0.75, 1.2, 4))
        for (p, q), w in zip(itertools.pairwise(pts), pressure, strict=False):
            r = max(0.5, base * w / 2)
            draw.line([p, q], fill=255, width=max(1, round(2 * r)))
            draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=255)
        r = max(0.5, base * pressure[-1] / 2)
        draw.ellipse([pts[-1][0] - r, pts[-1][1] - r, pts[-1][0] + r, pts[-1][1] + r], fill=255)
    small = canvas.resize((width, height), Image.Resampling.LANCZOS)
    cover: Pixels = np.asarray(small, dtype=np.float32) / 255.0
    return cover


def light(sample: Sample, rng: np.random.Generator) -> Pixels:
    """Illumination 0..1 across the page (1 = fully lit)."""
    width, height = sample.size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xx /= max(1, width - 1)
    yy /= max(1, height - 1)
    if sample.lighting == "linear":
        angle = rng.uniform(0, 2 * math.pi)
        ramp = (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle)
        linear: Pixels = (1.0 - 0.35 * (ramp + 0.7) / 1.4).astype(np.float32)
        return linear
    if sample.lighting == "radial":
        sx, sy = rng.uniform(0.2, 0.8, 2)
        dist = np.hypot(xx - sx, yy - sy)
        radial: Pixels = (1.0 - 0.4 * np.clip(dist / 1.1, 0, 1)).astype(np.float32)
        return radial
    return np.ones((height, width), np.float32)


def photograph(sample: Sample) -> Pixels:
    """The sample as float RGB 0..255: ink on tinted paper, lit unevenly, with sensor noise."""
    rng = np.random.default_rng(sample.seed)
    cover = ink_coverage(sample, rng)[..., None]
    paper = np.array(sample.paper, np.float32)
    ink = np.array(sample.ink, np.float32)
    rgb: Pixels = (paper * (1 - cover) + ink * cover).astype(np.float32)  # it is already
    rgb *= light(sample, rng)[..., None]
    rgb += rng.normal(0, sample.noise, size=rgb.shape) if sample.noise else 0.0
    clipped: Pixels = np.clip(rgb, 0, 255)
    return clipped


def encode(sample: Sample, rgb: Pixels) -> bytes:
    """Save in the sample's format and mode."""
    fmt = {"jpg": "JPEG", "png": "PNG", "bmp": "BMP", "tiff": "TIFF"}[sample.name.split(".")[-1]]
    image = Image.fromarray(rgb.round().astype(np.uint8), "RGB")
    options: dict[str, object] = {}
    if sample.mode == "L":
        image = image.convert("L")
    elif sample.mode == "I;16":
        # 16-bit scanners use the full 0..65535 range.
        gray = np.asarray(image.convert("L"), np.float32) * 257.0
        image = Image.fromarray(gray.astype(np.uint16))
    elif sample.mode == "P":
        image = image.quantize(colors=16)
    elif sample.mode in ("RGBA", "LA"):
        # Ink on a transparent layer, as drawing apps export it: alpha carries the strokes.
        alpha = np.clip((255 - np.asarray(image.convert("L"), np.float32)) * 1.6, 0, 255)
        color = np.asarray(image, np.uint8).copy()
        color[alpha < 8] = 0  # transparent pixels' colour is arbitrary: make it black
        image = Image.fromarray(color, "RGB")
        image.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
        if sample.mode == "LA":
            image = image.convert("LA")
    elif sample.mode == "exif":
        # A phone held sideways: the pixels are stored turned, the EXIF tag says how to
        # turn them back (6 = rotate 90° clockwise to display).
        image = image.transpose(Image.Transpose.ROTATE_90)
        exif = Image.Exif()
        exif[0x0112] = 6
        options["exif"] = exif.tobytes()
    if fmt == "JPEG":
        options["quality"] = sample.quality
    elif fmt == "TIFF":
        options["compression"] = "tiff_deflate"
    elif fmt == "PNG":
        options["optimize"] = True
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "images")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for sample in SAMPLES:
        data = encode(sample, photograph(sample))
        (args.out / sample.name).write_bytes(data)
        total += len(data)
        print(f"{sample.name:18} {sample.size[0]:4}x{sample.size[1]:<4} {len(data):7,} bytes")
    print(f"{len(SAMPLES)} images, {total:,} bytes in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
