"""Proxies for handwriting and cameras LeNet never saw, made from MNIST's *test* digits.

Our users are not MNIST's writers, and their pictures come from phones and scanners. The
held-out sets that measure that are kept outside the repository; these proxies stand in
for them, so a change can be judged before it ships. Each proxy turns a test digit (light
on black, 28×28) into the image bytes a user would send — dark ink on paper, enlarged,
photographed — after changing it the way another writer or another camera would:

    photo      the plain photo: tinted paper, off-centre, a lighting gradient, noise, JPEG
    thin       a fine pen: strokes eroded towards a hairline
    thick      a marker: strokes dilated
    elastic    another hand: an elastic distortion of the strokes
    rotated    the page turned up to ±12°
    sheared    slanted writing, shear up to ±0.35
    blurred    out of focus
    noisy      a dark room: heavy sensor noise
    phone      a phone photo: rotation up to ±10°, blur, uneven light, noise, off-centre, JPEG
    mixed      every change at once, each at random strength

    python -m bench proxies [--weights FILE] [--against FILE] [--per-proxy 10000]
                            [--writers-per-family 10]

prints accuracy per proxy and per digit (the test ``tests/test_proxies.py`` holds the
shipped weights to a floor on each), then on digits that MNIST's writers did not write
(``bench/writers.py``: handwriting fonts and drawn strokes, held to a floor by
``tests/test_writers.py``), which the proxies cannot measure. With ``--against`` a second
set of weights reads the same images, and each proxy says whether the two differ by more
than chance: the way to tell whether new weights are worse on a proxy. It takes ~3 minutes
per set of weights on one core at the default 10,000 digits.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bench import writers
from nn_server.networks import datasets
from nn_server.networks.fonts import MissingFont
from nn_server.networks.lenet import MNIST, LeNet

Digit = NDArray[Any]  # grey levels, uint8 or float while it is drawn
Rng = np.random.Generator


# -- changes to the digit itself (light on black, any size) ------------------------------


def enlarge(digit: Digit, rng: Rng) -> Digit:
    """The digit at 3-4× (a picture of it, not MNIST's 28 px), smooth edges."""
    side = int(28 * rng.uniform(3.0, 4.0))
    return cv2.resize(digit, (side, side), interpolation=cv2.INTER_CUBIC)


def stroke(digit: Digit, radius: int) -> Digit:
    """Thicker (radius > 0) or thinner (< 0) strokes, on the enlarged digit."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1,) * 2)
    return cv2.dilate(digit, kernel) if radius > 0 else cv2.erode(digit, kernel)


def elastic(digit: Digit, rng: Rng, alpha: float = 0.9, sigma: float = 0.14) -> Digit:
    """Simard's elastic distortion: a random displacement field, smoothed; ``alpha`` and
    ``sigma`` are in units of the image side (34 and 4 px at MNIST's 28)."""
    side = digit.shape[0]
    fields = [cv2.GaussianBlur(rng.uniform(-1, 1, digit.shape).astype(np.float32), (0, 0),
                               sigma * side) * alpha * side for _ in range(2)]
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    return cv2.remap(digit, xs + fields[0], ys + fields[1], cv2.INTER_LINEAR,
                     borderValue=(0,))


def affine(digit: Digit, degrees: float = 0.0, shear: float = 0.0) -> Digit:
    side = digit.shape[0]
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), degrees, 1.0)
    matrix[0, 1] += shear
    matrix[0, 2] -= shear * side / 2
    return cv2.warpAffine(digit, matrix, (side, side), borderValue=(0,))


def blur(digit: Digit, sigma: float) -> Digit:
    return cv2.GaussianBlur(digit, (0, 0), sigma)


# -- the photograph ------------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """How the page is photographed."""

    noise: float = 4.0
    """Sensor noise, standard deviation in grey levels."""
    gradient: float = 40.0
    """How much darker one corner of the page is than the other, in grey levels."""
    quality: int = 90
    blur: float = 0.0


def photograph(ink: Digit, rng: Rng, camera: Camera) -> bytes:
    """The digit (light on black) as dark ink on tinted paper, off-centre on a larger
    page, lit unevenly, with noise, saved as JPEG."""
    side = ink.shape[0]
    page_side = int(side * rng.uniform(1.25, 1.6))
    page: Digit = np.zeros((page_side, page_side), np.float32)
    top, left = (rng.integers(0, page_side - side + 1) for _ in range(2))
    page[top : top + side, left : left + side] = ink
    if camera.blur:
        page = cv2.GaussianBlur(page, (0, 0), camera.blur)
    paper = rng.uniform(200, 245)
    ink_level = rng.uniform(20, 70)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:page_side, 0:page_side] / page_side
    light = (np.cos(angle) * xs + np.sin(angle) * ys) * camera.gradient
    grey = paper - light - (paper - ink_level) * page / 255.0
    grey += rng.normal(0, camera.noise, grey.shape)
    tint = rng.uniform(0.9, 1.0, 3)
    rgb = np.clip(grey[:, :, None] * tint, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=camera.quality)
    return out.getvalue()


Proxy = Callable[[Digit, Rng], bytes]


def photo(digit: Digit, rng: Rng) -> bytes:
    return photograph(enlarge(digit, rng), rng, Camera())


def thin(digit: Digit, rng: Rng) -> bytes:
    return photograph(stroke(enlarge(digit, rng), -int(rng.integers(2, 5))), rng, Camera())


def thick(digit: Digit, rng: Rng) -> bytes:
    return photograph(stroke(enlarge(digit, rng), int(rng.integers(4, 9))), rng, Camera())


def distorted(digit: Digit, rng: Rng) -> bytes:
    return photograph(elastic(enlarge(digit, rng), rng), rng, Camera())


def rotated(digit: Digit, rng: Rng) -> bytes:
    return photograph(affine(enlarge(digit, rng), degrees=rng.uniform(-12, 12)), rng,
                      Camera())


def sheared(digit: Digit, rng: Rng) -> bytes:
    return photograph(affine(enlarge(digit, rng), shear=rng.uniform(-0.35, 0.35)), rng,
                      Camera())


def blurred(digit: Digit, rng: Rng) -> bytes:
    big = enlarge(digit, rng)
    return photograph(blur(big, rng.uniform(0.03, 0.05) * big.shape[0]), rng, Camera())


def noisy(digit: Digit, rng: Rng) -> bytes:
    return photograph(enlarge(digit, rng), rng, Camera(noise=rng.uniform(10, 20)))


def phone(digit: Digit, rng: Rng) -> bytes:
    big = affine(enlarge(digit, rng), degrees=rng.uniform(-10, 10))
    camera = Camera(noise=rng.uniform(4, 10), gradient=rng.uniform(40, 90),
                    quality=int(rng.integers(60, 90)), blur=rng.uniform(1.0, 3.0))
    return photograph(big, rng, camera)


def mixed(digit: Digit, rng: Rng) -> bytes:
    big = enlarge(digit, rng)
    big = stroke(big, int(rng.integers(-3, 6))) if rng.random() < 0.7 else big
    big = elastic(big, rng, alpha=rng.uniform(0.4, 0.9))
    big = affine(big, degrees=rng.uniform(-12, 12), shear=rng.uniform(-0.3, 0.3))
    camera = Camera(noise=rng.uniform(3, 15), gradient=rng.uniform(20, 80),
                    quality=int(rng.integers(60, 95)), blur=rng.uniform(0.0, 2.5))
    return photograph(big, rng, camera)


PROXIES: dict[str, Proxy] = {
    "photo": photo, "thin": thin, "thick": thick, "elastic": distorted, "rotated": rotated,
    "sheared": sheared, "blurred": blurred, "noisy": noisy, "phone": phone, "mixed": mixed,
}


@dataclass(frozen=True)
class Report:
    """Accuracy of one set of weights on every proxy, overall and per digit, and which
    images it read right (``right[proxy][i]``: the i-th test digit), for a paired
    comparison of two sets of weights on the same images."""

    accuracy: dict[str, float]
    per_digit: dict[str, list[float]]
    right: dict[str, NDArray[np.bool_]]

    def table(self) -> str:
        head = f"{'proxy':9} {'all':>7}  " + " ".join(f"{d:>5}" for d in range(10))
        rows = [head, "-" * len(head)]
        for name, score in self.accuracy.items():
            digits = " ".join(f"{100 * p:5.1f}" for p in self.per_digit[name])
            rows.append(f"{name:9} {score:7.2%}  {digits}")
        return "\n".join(rows)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test (McNemar's, exact): how likely a split at least this
    uneven is when each of the ``wins + losses`` images one side alone read right was as
    likely to go either way."""
    n = wins + losses
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / (1 << n)
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Comparison:
    """Two sets of weights on the same proxy images. At 1,000 digits a proxy's figure
    moves by about ±0.4 points by chance; counting only the images on which the two
    disagree, and testing that split, tells a real loss from that chance."""

    new: Report
    old: Report

    def table(self, new_name: str, old_name: str) -> str:
        head = (f"{'proxy':9} {new_name:>13} {old_name:>13}  {'only new':>8} "
                f"{'only old':>8}  {'p':>5}  verdict")
        rows = [head, "-" * len(head)]
        for name in self.new.accuracy:
            new, old = self.new.right[name], self.old.right[name]
            wins, losses = int((new & ~old).sum()), int((~new & old).sum())
            p = sign_test(wins, losses)
            verdict = ("same" if p >= 0.05 else "better" if wins > losses else "WORSE")
            rows.append(f"{name:9} {self.new.accuracy[name]:13.2%} "
                        f"{self.old.accuracy[name]:13.2%}  {wins:8} {losses:8}  {p:5.3f}  "
                        f"{verdict}")
        return "\n".join(rows)


def test_digits(per_proxy: int, data_dir: Path | None = None) -> datasets.Split:
    """``per_proxy`` MNIST *test* digits, evenly spread (never training digits)."""
    test = datasets.load_split(MNIST, "test", data_dir)
    picks = np.linspace(0, len(test) - 1, per_proxy).astype(int)
    return datasets.Split(test.images[picks], test.labels[picks])


def evaluate(net: LeNet, digits: datasets.Split, seed: int = 0) -> Report:
    accuracy: dict[str, float] = {}
    per_digit: dict[str, list[float]] = {}
    rights: dict[str, NDArray[np.bool_]] = {}
    for number, (name, proxy) in enumerate(PROXIES.items()):
        rng = np.random.default_rng(seed + number)
        files = [proxy(image, rng) for image in digits.images]
        predicted = np.array([
            int(p.label) if not isinstance(p, Exception) else -1
            for start in range(0, len(files), 256)
            for p in net.classify_each(files[start : start + 256])
        ])
        right = predicted == digits.labels
        rights[name] = right
        accuracy[name] = float(right.mean())
        per_digit[name] = [float(right[digits.labels == d].mean()) for d in range(10)]
    return Report(accuracy, per_digit, rights)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench proxies", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=None,
                        help="LeNet weights (default: the shipped ones)")
    parser.add_argument("--per-proxy", type=int, default=10_000,
                        help="test digits per proxy (default 10000: every one, for figures "
                             "within about ±0.1 point; 1000 takes a tenth of the time)")
    parser.add_argument("--against", type=Path, default=None, metavar="WEIGHTS",
                        help="other LeNet weights to read the same images: prints which "
                             "proxies differ beyond chance (exact sign test)")
    parser.add_argument("--writers-per-family", type=int, default=10,
                        help="other writers' digits: images of each digit per font family "
                             "(default 10; 0 leaves the set out)")
    parser.add_argument("--writers-strokes", type=int, default=30,
                        help="other writers' digits: stroke-drawn images per digit (default 30)")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    net = LeNet()
    net.initialize(args.weights)
    digits = test_digits(args.per_proxy, args.data_dir)
    report = evaluate(net, digits)
    print(f"LeNet weights {net.version}, {args.per_proxy} MNIST test digits per proxy")
    print(report.table())
    if args.against is not None:
        other = LeNet()
        other.initialize(args.against)
        against = evaluate(other, digits)
        print(f"\n{net.version} against {other.version} on the same images")
        print(Comparison(report, against).table(str(net.version), str(other.version)))
    if args.writers_per_family:
        try:
            samples = writers.build(args.writers_per_family, args.writers_strokes)
        except MissingFont as exc:
            print(f"python -m bench proxies: {exc}", file=sys.stderr)
            return 1
        print(f"\nOther writers: {args.writers_per_family} images of each digit from each of "
              f"{len(writers.FAMILIES)} handwriting fonts, {args.writers_strokes} drawn with "
              "strokes")
        print(writers.evaluate(net, samples).table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
