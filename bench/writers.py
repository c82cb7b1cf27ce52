"""Other writers: digits NOT written by MNIST's writers, sent as users send them.

``bench/proxies.py`` restyles MNIST's own test digits, so it measures MNIST's writers
again; users' handwriting differs in the shapes themselves (open 4s, 1s with a flag and a
base, barred 7s, straight-tailed 9s). This set is built at run time, deterministically
(seeded), from two sources that no training run sees:

    fonts    14 handwriting fonts packaged by Debian (``FACES``; the training fonts of
             ``nn_server.training.synthetic`` are other families), each digit at random
             stroke width, slant, turn and width, from a coarse source (10 px tall) to a
             fine one (110 px), enlarged or shrunk to 28-300 px
    strokes  digits drawn as jittered pen strokes (``TEMPLATES``), in the styles MNIST
             rarely has as well as the common ones

and each is "uploaded": dark ink (black, ballpoint blue, red, green, pencil) on paper
(white, cream, grey, yellow note, blue) off-centre, lit unevenly, with noise and blur,
saved as JPEG, PNG (colour, grey or ink on transparency, as a drawing app saves) or BMP.
They reach LeNet through its served preprocessing (``LeNet.preprocess``), as requests do.

    python -m bench proxies [--writers-per-family 10]

prints them below the proxies, per part and per digit; ``tests/test_writers.py`` holds
the shipped weights to a floor. A missing font fails with the package to install.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from nn_server.networks import fonts
from nn_server.networks.base import Network
from nn_server.networks.fonts import Face, FloatImage, Rng, Stroke, arc, chain

FACES: tuple[Face, ...] = (
    *(Face("dkg", f"truetype/fifthhorseman/{n}.ttf", "fonts-dkg-handwriting")
      for n in ("dkg", "dkgBd", "dkgIt", "dkgBI")),
    *(Face(f"bwht-{n.lower()}", f"opentype/bwht/BecauseWe{n}-Regular.otf", "fonts-bwht")
      for n in ("Build", "Connect", "Create")),
    Face("humor-sans", "truetype/humor-sans/Humor-Sans.ttf", "fonts-humor-sans"),
    Face("kristi", "truetype/kristi/Kristi.ttf", "fonts-kristi"),
    Face("steve-hand", "truetype/sjfonts/SteveHand.ttf", "fonts-sjfonts"),
    Face("seto", "truetype/seto/setofont.ttf", "fonts-seto"),
    *(Face("kiloji", f"truetype/kiloji/kiloji{n}.ttf", "fonts-kiloji")
      for n in ("", "_b", "_d", "_p")),
    *(Face("purisa", f"truetype/tlwg/Purisa{n}.ttf", "fonts-tlwg-purisa-ttf")
      for n in ("", "-Bold", "-Oblique", "-BoldOblique")),
    Face("rufscript", "truetype/rufscript/Rufscript010.ttf", "fonts-rufscript"),
    Face("domestic-manners", "truetype/dustin/Domestic_Manners.ttf", "fonts-dustin"),
    Face("junkyard", "truetype/dustin/Junkyard.ttf", "fonts-dustin"),
    *(Face("dancing-script", f"opentype/dancingscript/DancingScript-{n}.otf",
           "fonts-dancingscript") for n in ("Regular", "Bold")),
)
FAMILIES = tuple(dict.fromkeys(face.family for face in FACES))
PACKAGES = tuple(dict.fromkeys(face.package for face in FACES))

# Digits as pen strokes in a unit box (x right, y down), by style: the ones MNIST rarely
# has (open 4, 1 with flag and base, barred 7, straight-tailed 9, flat-topped 3) and the
# common ones, so a weak digit shows which of its styles is read wrong.
TEMPLATES: dict[int, dict[str, list[Stroke]]] = {
    0: {"oval": [arc(0.5, 0.5, 0.3, 0.46, -100, 265)],
        "round": [arc(0.5, 0.5, 0.4, 0.46, -80, 285)]},
    1: {"bar": [[(0.5, 0.04), (0.5, 0.96)]],
        "flag": [[(0.28, 0.26), (0.52, 0.04), (0.52, 0.96)]],
        "flag-base": [[(0.28, 0.26), (0.52, 0.04), (0.52, 0.96)], [(0.25, 0.96), (0.8, 0.96)]]},
    2: {"plain": [chain(arc(0.5, 0.3, 0.3, 0.26, 195, 375), [(0.2, 0.95), (0.82, 0.95)])],
        "loop": [chain(arc(0.5, 0.3, 0.3, 0.26, 195, 375), [(0.22, 0.88)],
                       arc(0.3, 0.86, 0.1, 0.08, -90, 90)[::-1], [(0.85, 0.92)])]},
    3: {"round": [chain(arc(0.48, 0.28, 0.28, 0.23, 200, 450),
                        arc(0.48, 0.73, 0.32, 0.24, -90, 155))],
        "flat-top": [chain([(0.2, 0.05), (0.8, 0.05), (0.42, 0.42)],
                           arc(0.5, 0.69, 0.32, 0.27, -95, 160))]},
    4: {"open": [[(0.45, 0.04), (0.18, 0.62), (0.88, 0.62)], [(0.66, 0.3), (0.66, 0.96)]],
        "closed": [[(0.68, 0.96), (0.68, 0.04), (0.14, 0.66), (0.88, 0.66)]],
        "parallel": [[(0.22, 0.04), (0.22, 0.56), (0.86, 0.56)], [(0.7, 0.04), (0.7, 0.96)]]},
    5: {"plain": [chain([(0.78, 0.05), (0.3, 0.05), (0.25, 0.45)],
                        arc(0.48, 0.68, 0.32, 0.27, -150, 150))],
        "two-strokes": [chain([(0.3, 0.05), (0.25, 0.45)], arc(0.48, 0.68, 0.32, 0.27, -150, 150)),
                        [(0.3, 0.05), (0.8, 0.04)]]},
    6: {"plain": [chain([(0.72, 0.04), (0.45, 0.2), (0.27, 0.5)],
                        arc(0.5, 0.72, 0.26, 0.24, 180, 530))],
        "straight": [chain([(0.62, 0.04), (0.26, 0.66)], arc(0.5, 0.72, 0.26, 0.24, 180, 530))]},
    7: {"plain": [[(0.18, 0.05), (0.82, 0.05), (0.4, 0.96)]],
        "barred": [[(0.18, 0.05), (0.82, 0.05), (0.4, 0.96)], [(0.32, 0.52), (0.78, 0.5)]],
        "serif": [[(0.18, 0.22), (0.18, 0.05), (0.82, 0.05), (0.4, 0.96)]]},
    8: {"loops": [arc(0.5, 0.26, 0.22, 0.22, 90, 450), arc(0.5, 0.72, 0.29, 0.25, -90, 270)],
        "figure": [chain(arc(0.5, 0.26, 0.23, 0.22, 130, 360), [(0.5, 0.5)],
                         arc(0.5, 0.73, 0.28, 0.24, -90, 180)[::-1][:-1],
                         [(0.5, 0.5), (0.27, 0.26)])]},
    9: {"straight": [arc(0.5, 0.3, 0.28, 0.26, 0, 360), [(0.78, 0.3), (0.76, 0.96)]],
        "curved": [arc(0.5, 0.3, 0.28, 0.26, 0, 360),
                   [(0.78, 0.3), (0.74, 0.72), (0.55, 0.93), (0.3, 0.9)]]},
}


# -- the upload -----------------------------------------------------------------------------

PAPERS = ((250, 250, 248), (246, 239, 222), (222, 222, 218), (250, 240, 165), (226, 236, 246))
INKS = ((22, 22, 28), (30, 40, 135), (20, 70, 185), (170, 30, 35), (30, 110, 55), (85, 85, 92))
FORMATS = ("jpeg", "jpeg", "jpeg", "png", "png-grey", "png-alpha", "bmp")


def upload(ink: FloatImage, rng: Rng) -> bytes:
    """Ink (0..1, light on black) as a user's file: sized, on paper, lit, encoded."""
    height = int(np.exp(rng.uniform(np.log(28), np.log(300))))
    h, w = ink.shape
    width = max(1, round(w * height / h))
    sized = cv2.resize(ink, (width, height),
                       interpolation=cv2.INTER_AREA if height < h else cv2.INTER_LINEAR)
    margins = (rng.uniform(0.05, 0.5, 4) * height).astype(int)
    ink = np.pad(sized, ((margins[0], margins[1]), (margins[2], margins[3])))
    # The server refuses images under 28 px a side; a thin 1 on a tight crop would be one.
    short = np.maximum(0, 32 - np.array(ink.shape))
    ink = np.pad(ink, ((short[0] // 2, short[0] - short[0] // 2),
                       (short[1] // 2, short[1] - short[1] // 2)))
    page_h, page_w = ink.shape
    paper = np.array(PAPERS[int(rng.integers(0, len(PAPERS)))], np.float32)
    paper *= np.float32(rng.uniform(0.88, 1.0))
    colour_index = int(rng.integers(0, len(INKS)))
    colour = np.array(INKS[colour_index], np.float32)
    # Pencil is grey and grainy; pens lay down nearly their full colour.
    strength = rng.uniform(0.55, 0.85) if colour_index == len(INKS) - 1 else rng.uniform(0.85, 1)
    alpha = np.clip(ink * strength, 0, 1)
    if rng.random() < 0.5:
        alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.3, 0.02 * height + 0.5))
    kind = FORMATS[int(rng.integers(0, len(FORMATS)))]
    if kind == "png-alpha":
        rgba = np.zeros((page_h, page_w, 4), np.uint8)
        rgba[..., :3] = colour.astype(np.uint8)
        rgba[..., 3] = (alpha * 255).astype(np.uint8)
        return encode(Image.fromarray(rgba, "RGBA"), "PNG")
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:page_h, 0:page_w].astype(np.float32) / max(page_h, page_w)
    light = 1 - (np.cos(angle) * xs + np.sin(angle) * ys + 1) * rng.uniform(0, 0.12)
    rgb = (paper * (1 - alpha[..., None]) + colour * alpha[..., None]) * light[..., None]
    rgb += rng.normal(0, rng.uniform(0, 7), (page_h, page_w, 1))
    pixels = np.clip(rgb, 0, 255).astype(np.uint8)
    if kind == "png-grey":
        return encode(Image.fromarray(pixels).convert("L"), "PNG")
    if kind == "jpeg":
        return encode(Image.fromarray(pixels), "JPEG", quality=int(rng.integers(50, 96)))
    return encode(Image.fromarray(pixels), "PNG" if kind == "png" else "BMP")


def encode(image: Image.Image, kind: str, **options: int) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


# -- the set --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    data: bytes
    label: int
    part: str
    """``fonts`` or ``strokes``."""
    source: str
    """The font family, or the stroke style (``4/open``)."""


def font_sample(face: Face, digit: int, rng: Rng) -> Sample:
    style = fonts.draw_style(rng, stroke=(-0.02, 0.07), shear=0.35, degrees=10)
    ink = fonts.glyph(fonts.locate(face), digit, style)
    source = int(np.exp(rng.uniform(np.log(10), np.log(110))))
    return Sample(upload(fonts.coarsen(ink, source, rng), rng), digit, "fonts", face.family)


def stroke_sample(digit: int, name: str, rng: Rng) -> Sample:
    style = fonts.draw_style(rng, shear=0.3, degrees=10)
    ink = fonts.pen(TEMPLATES[digit][name], rng, style)
    source = int(np.exp(rng.uniform(np.log(14), np.log(110))))
    return Sample(upload(fonts.coarsen(ink, source, rng), rng), digit, "strokes",
                  f"{digit}/{name}")


def build(per_family: int = 10, per_digit_strokes: int = 30, seed: int = 0) -> list[Sample]:
    """The set: ``per_family`` images of each digit from each font family (spread over
    the family's faces) and ``per_digit_strokes`` stroke-drawn ones of each digit (spread
    over its styles). Each image has its own seeded generator, so any slice of the set is
    the same images whatever else is built."""
    fonts.require(FACES)
    samples: list[Sample] = []
    for f, family in enumerate(FAMILIES):
        faces = [face for face in FACES if face.family == family]
        for digit in range(10):
            for k in range(per_family):
                rng = np.random.default_rng((seed, 0, f, digit, k))
                samples.append(font_sample(faces[k % len(faces)], digit, rng))
    for digit in range(10):
        styles = list(TEMPLATES[digit])
        for k in range(per_digit_strokes):
            rng = np.random.default_rng((seed, 1, digit, k))
            samples.append(stroke_sample(digit, styles[k % len(styles)], rng))
    return samples


@dataclass(frozen=True)
class Result:
    """LeNet's answers on the set; -1 where the image was refused."""

    samples: list[Sample] = field(repr=False)  # an assertion's message shows table()
    predicted: NDArray[np.int64] = field(repr=False)

    def right(self, part: str | None = None) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
        chosen = [part is None or s.part == part for s in self.samples]
        labels = np.array([s.label for s in self.samples])[chosen]
        return self.predicted[chosen] == labels, labels

    def accuracy(self, part: str | None = None) -> float:
        return float(self.right(part)[0].mean())

    def per_digit(self, part: str | None = None) -> list[float]:
        right, labels = self.right(part)
        return [float(right[labels == d].mean()) for d in range(10)]

    def by_source(self) -> dict[str, float]:
        scores: dict[str, list[bool]] = {}
        for sample, guess in zip(self.samples, self.predicted, strict=True):
            scores.setdefault(sample.source, []).append(bool(guess == sample.label))
        return {source: float(np.mean(s)) for source, s in scores.items()}

    def table(self) -> str:
        """Accuracy per part and per digit, in ``bench/proxies.py``'s layout, then each
        source's accuracy and the commonest mistakes."""
        head = f"{'writers':9} {'all':>7}  " + " ".join(f"{d:>5}" for d in range(10))
        rows = [head, "-" * len(head)]
        for part in ("fonts", "strokes", None):
            digits = " ".join(f"{100 * p:5.1f}" for p in self.per_digit(part))
            rows.append(f"{part or 'all':9} {self.accuracy(part):7.2%}  {digits}")
        sources = self.by_source()
        families = [f"{name} {sources[name]:.0%}" for name in FAMILIES]
        styles = [f"{name} {score:.0%}" for name, score in sources.items()
                  if "/" in name and score < 1]
        rows.append("fonts by family: " + ", ".join(families))
        rows.append("strokes under 100 %: " + (", ".join(styles) or "none"))
        rows.append("commonest mistakes (digit→read as ×n): " + ", ".join(
            f"{label}→{guess} ×{n}" for label, guess, n in self.confusions()))
        return "\n".join(rows)

    def confusions(self, top: int = 8) -> list[tuple[int, int, int]]:
        """The commonest (label, read as, count) mistakes."""
        pairs: dict[tuple[int, int], int] = {}
        for sample, guess in zip(self.samples, self.predicted, strict=True):
            if guess != sample.label:
                pairs[(sample.label, int(guess))] = pairs.get((sample.label, int(guess)), 0) + 1
        ranked = sorted(pairs.items(), key=lambda item: -item[1])[:top]
        return [(label, guess, n) for (label, guess), n in ranked]


def evaluate(net: Network, samples: list[Sample]) -> Result:
    predicted = np.array([
        int(p.label) if not isinstance(p, Exception) else -1
        for start in range(0, len(samples), 256)
        for p in net.classify_each([s.data for s in samples[start : start + 256]])
    ], np.int64)
    return Result(samples, predicted)
