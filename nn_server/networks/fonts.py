"""Digits drawn from handwriting fonts: the glyph, restyled the way another pen would draw it.

MNIST's 60,000 digits come from some 500 writers; our users are others. Fonts made from
other people's handwriting (Debian packages them as ``fonts-*``) are a cheap, reproducible
stand-in for more writers: ``bench/writers.py`` measures LeNet on one set of them and
``nn_server.training.synthetic`` trains on a *disjoint* set, so the measurement never sees
a hand the training saw. Both draw a glyph the same way here:

    glyph    the digit at a fine resolution (128 px of font size), light ink on black, its
             strokes widened (PIL's stroke) or narrowed (an erosion), slanted and turned
    coarsen  that ink brought down to a coarse source height (8-60 px) and back up, as a
             small scan or a thumbnail enlarged by a user's software would look

A face whose file is missing raises ``MissingFont`` naming the Debian package to install.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from nn_server.networks.base import Augmentation

FloatImage = NDArray[np.float32]
Rng = np.random.Generator
Stroke = list[tuple[float, float]]
"""A pen's path in a unit box, x right and y down."""

FONT_ROOTS = (Path("/usr/share/fonts"), Path("/usr/share/texmf/fonts"))
"""Where Debian's font packages put their files (TeX Gyre under texmf)."""
FONT_SIZE = 128
"""Font size the glyphs are drawn at, in px: fine enough that a stroke spans pixels."""


@dataclass(frozen=True)
class Face:
    """One font file: whose hand (``family``), where Debian installs it, which package."""

    family: str
    file: str
    """Path under one of ``FONT_ROOTS``, e.g. ``truetype/kristi/Kristi.ttf``."""
    package: str


class MissingFont(FileNotFoundError):
    """A face's file is not installed; the message names the packages that install them."""


@dataclass(frozen=True)
class FontAugmentation(Augmentation):
    """LeNet's augmentation, plus digits drawn from training fonts mixed into each batch."""

    fonts: float = 0.0
    """Share of each training batch replaced by font digits (``nn_server.training.
    synthetic``): other hands than MNIST's, whose open 4s, flagged 1s and barred 7s MNIST
    rarely has."""
    font_digits: int = 0
    """How many distinct font digits are drawn per run (the batches sample from them), at
    most as many as the data set has."""


def locate(face: Face) -> Path:
    for root in FONT_ROOTS:
        path = root / face.file
        if path.is_file():
            return path
    raise MissingFont(f"font {face.file} ({face.family}) is not installed: "
                      f"apt-get install {face.package}")


def require(faces: Iterable[Face]) -> list[Path]:
    """Every face's file, or one ``MissingFont`` naming every package still needed."""
    paths: list[Path] = []
    missing: dict[str, None] = {}
    for face in faces:
        try:
            paths.append(locate(face))
        except MissingFont:
            missing[face.package] = None
    if missing:
        raise MissingFont("fonts for LeNet's handwriting sets are not installed: "
                          f"apt-get install {' '.join(missing)}")
    return paths


@functools.lru_cache(maxsize=128)
def load_font(path: Path) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), FONT_SIZE)


@dataclass(frozen=True)
class Style:
    """How one glyph is drawn; ``draw_style`` picks one at random."""

    stroke: float = 0.0
    """Change of stroke width in units of the font size: > 0 widens by PIL's stroke, < 0
    narrows by an erosion (never below a 2 px stroke)."""
    shear: float = 0.0
    degrees: float = 0.0
    aspect: float = 1.0
    """Width scale: narrow or wide hands."""


def draw_style(rng: Rng, stroke: tuple[float, float] = (-0.02, 0.06),
               shear: float = 0.3, degrees: float = 8.0,
               aspect: tuple[float, float] = (-0.15, 0.15)) -> Style:
    """A random style: ``aspect`` is the range of the width scale's logarithm."""
    return Style(stroke=float(rng.uniform(*stroke)), shear=float(rng.uniform(-shear, shear)),
                 degrees=float(rng.uniform(-degrees, degrees)),
                 aspect=float(np.exp(rng.uniform(*aspect))))


def glyph(path: Path, digit: int, style: Style, pad: int = FONT_SIZE // 2) -> FloatImage:
    """The digit in the font at ``path``: ink 0..1 on black, tightly framed with a margin.

    ``pad`` only sizes the canvas the glyph is turned and slanted on (the result is framed
    to the ink): training passes a small one, a third of the pixels to warp."""
    font = load_font(path)
    widen = max(0, round(style.stroke * FONT_SIZE))
    left, top, right, bottom = font.getbbox(str(digit), stroke_width=widen)
    size = (int(right - left) + 2 * pad, int(bottom - top) + 2 * pad)
    image = Image.new("L", size, 0)
    ImageDraw.Draw(image).text((pad - left, pad - top), str(digit), font=font, fill=255,
                               stroke_width=widen, stroke_fill=255)
    ink = np.asarray(image, np.float32) / 255.0
    if style.stroke < 0:
        ink = narrow(ink, -style.stroke * FONT_SIZE)
    return transform(ink, style)


def narrow(ink: FloatImage, by: float) -> FloatImage:
    """Strokes eroded by up to ``by`` px in all, keeping at least 2 px of every stroke
    (half the widest stroke, as the distance transform says, bounds the erosion)."""
    mask = (ink > 0.5).astype(np.uint8)
    half = float(cv2.distanceTransform(mask, cv2.DIST_L2, 3).max())
    radius = int(min(by / 2, half - 1.5))
    if radius < 1:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    return cv2.erode(ink, kernel)  # type: ignore[return-value]


def transform(ink: FloatImage, style: Style) -> FloatImage:
    """Turned, widened or narrowed and slanted about the centre, then framed to the ink."""
    h, w = ink.shape
    side = int(1.8 * max(h, w))
    turn = np.radians(style.degrees)
    rotate = np.array([[np.cos(turn), np.sin(turn)], [-np.sin(turn), np.cos(turn)]])
    # x' = aspect · x - shear · y: with y growing downwards, shear > 0 leans the top right.
    slant = np.array([[style.aspect, -style.shear], [0.0, 1.0]])
    linear = slant @ rotate
    offset = np.array([side / 2, side / 2]) - linear @ np.array([w / 2, h / 2])
    matrix = np.hstack([linear, offset[:, None]]).astype(np.float64)
    out = cv2.warpAffine(ink, matrix, (side, side), flags=cv2.INTER_LINEAR, borderValue=(0,))
    return frame(out)  # type: ignore[arg-type]


def frame(ink: FloatImage, margin: float = 0.08) -> FloatImage:
    """The ink's bounding box, with ``margin`` of its longer side around it."""
    rows = np.flatnonzero(ink.max(axis=1) > 0.1)
    cols = np.flatnonzero(ink.max(axis=0) > 0.1)
    if rows.size == 0:
        return ink
    box = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    pad = max(1, int(margin * max(box.shape)))
    return np.pad(box, pad)


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> Stroke:
    """Points along an elliptic arc, angles in degrees, clockwise on the page (y down)."""
    steps = max(4, int(abs(end - start) / 6))
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, end, steps)]


def chain(*pieces: Stroke) -> Stroke:
    """One stroke through the pieces in turn (the pen stays down)."""
    return [point for piece in pieces for point in piece]


def pen(strokes: Sequence[Stroke], rng: Rng, style: Style,
        width: tuple[float, float] = (0.04, 0.12), side: int = 256) -> FloatImage:
    """The strokes jittered (a few points moved ~3 % of the height), resampled smoothly
    and drawn with a round pen ``width`` of the height wide on a ``side`` px canvas, then
    styled like a glyph."""
    image = np.zeros((side, side), np.uint8)
    thickness = max(2, int(side * rng.uniform(*width) * 0.7))
    for stroke in strokes:
        points = np.array(stroke, np.float64)
        # Jitter a few control points and spread it smoothly along the stroke: a hand
        # moves whole curves, it does not shake every point (an arc has dozens).
        knots = min(len(points), 2 + len(points) // 10)
        jitter = rng.normal(0, 0.03, (knots, 2))
        along = np.linspace(0, 1, len(points))
        points += np.stack([np.interp(along, np.linspace(0, 1, knots), jitter[:, k])
                            for k in (0, 1)], axis=1)
        t = np.linspace(0, 1, 8 * len(points))
        dense = np.stack([np.interp(t, along, points[:, k]) for k in (0, 1)], axis=1)
        pixels = (0.15 * side + dense * 0.7 * side).round().astype(np.int32)
        cv2.polylines(image, [pixels], False, (255,), thickness, cv2.LINE_AA)
    ink = image.astype(np.float32) / 255.0
    return transform(ink, Style(shear=style.shear, degrees=style.degrees, aspect=style.aspect))


def coarsen(ink: FloatImage, height: int, rng: Rng) -> FloatImage:
    """``ink`` as a source ``height`` px tall (area-averaged), enlarged back by nearest,
    bilinear or bicubic interpolation: a coarse scan or a thumbnail a user blew up."""
    h, w = ink.shape
    if height >= h:
        return ink
    small = cv2.resize(ink, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
    method = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(0, 3))]
    big = cv2.resize(small, (w, h), interpolation=method)
    return np.clip(big, 0.0, 1.0)  # type: ignore[no-any-return]
