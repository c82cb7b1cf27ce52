"""Training digits from other hands than MNIST's: fonts, OpenCV's Hershey strokes, pens.

MNIST's writers rarely make an open-topped 4, a 1 with a flag and a base or a barred 7;
many users do. ``digits`` draws such digits from three sources ``bench/writers.py`` never
measures with: the *training* faces below (handwriting and typeset fonts from Debian
packages, none of the families the benchmark uses), OpenCV's built-in Hershey stroke fonts
(no package), and pen strokes whose shapes are picked at random (``pen_strokes``). Each is
drawn at a random stroke width, slant, turn, width and source resolution (``nn_server.
networks.fonts``), half of them elastically distorted and half blurred, then turned into
28×28 MNIST-style digits by the served preprocessing itself (``digits.to_mnist``), so they
look to LeNet as a user's photo of them would. ``nn_server.training.data.Batches`` mixes
them into MNIST's batches.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from nn_server.networks import fonts
from nn_server.networks.datasets import Split
from nn_server.networks.digits import to_mnist
from nn_server.networks.fonts import Face, FloatImage, Rng, Stroke, arc, chain
from nn_server.networks.images import BlankImage

FACES: tuple[Face, ...] = (
    *(Face("comic-neue", f"opentype/comic-neue/ComicNeue-{n}.otf", "fonts-comic-neue")
      for n in ("Regular", "Bold", "Light", "Italic", "BoldItalic", "LightItalic")),
    *(Face(f"bwht-{n.lower()}", f"opentype/bwht/BecauseWe{n}-Regular.otf", "fonts-bwht")
      for n in ("Learn", "Mentor", "Organize")),
    Face("breip", "truetype/breip/breipfont.ttf", "fonts-breip"),
    Face("ecolier", "truetype/ecolier-court/Ecolier-court.ttf", "fonts-ecolier-court"),
    Face("tomson-talks", "truetype/tomsontalks/TomsonTalks.ttf", "fonts-tomsontalks"),
    Face("delphine", "truetype/sjfonts/Delphine.ttf", "fonts-sjfonts"),
    Face("yusei-magic", "truetype/yusei-magic/YuseiMagic-Regular.ttf", "fonts-yusei-magic"),
    Face("leckerli", "truetype/leckerli-one/LeckerliOne-Regular.ttf", "fonts-leckerli-one"),
    Face("kaushan", "opentype/kaushanscript/KaushanScript-Regular.otf", "fonts-kaushanscript"),
    Face("havana", "opentype/havana/Havana-Regular.otf", "fonts-havana"),
    Face("isabella", "truetype/isabella/Isabella.ttf", "fonts-isabella"),
    *(Face("andika", f"truetype/andika/Andika-{n}.ttf", "fonts-sil-andika")
      for n in ("Regular", "Bold", "Italic", "BoldItalic")),
    *(Face("dejavu", f"truetype/dejavu/DejaVu{n}.ttf", "fonts-dejavu-core")
      for n in ("Sans", "Sans-Bold", "Serif", "SansMono")),
    *(Face("urw", f"opentype/urw-base35/{n}.otf", "fonts-urw-base35")
      for n in ("NimbusSans-Regular", "NimbusSans-Italic", "NimbusRoman-Regular",
                "C059-Italic", "P052-Roman", "URWGothic-Book", "URWBookman-LightItalic",
                "Z003-MediumItalic")),
    *(Face("opendyslexic", f"opentype/opendyslexic/OpenDyslexic-{n}.otf", "fonts-opendyslexic")
      for n in ("Regular", "Italic")),
    *(Face("klaudia", f"truetype/klaudia-berenika/{n}.ttf", "fonts-klaudia-berenika")
      for n in ("Klaudia", "Berenika-Oblique")),
    Face("lobster", "opentype/lobster/lobster.otf", "fonts-lobster"),
    *(Face("klee", f"truetype/klee/KleeOne-{n}.ttf", "fonts-klee")
      for n in ("Regular", "SemiBold")),
    Face("navilu", "truetype/Navilu/Navilu.ttf", "fonts-navilu"),
)
FAMILIES = tuple(dict.fromkeys(face.family for face in FACES))
PACKAGES = tuple(dict.fromkeys(face.package for face in FACES))
HERSHEY = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
           cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
           cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
"""OpenCV's stroke fonts: a pen's centre line, drawn at any width, plain or italic."""
STYLE: dict[str, Any] = {"stroke": (-0.02, 0.08), "shear": 0.4, "aspect": (-0.5, 0.15)}
"""How far ``fonts.draw_style`` varies the training glyphs: strokes up to a marker's, slants
to 22°, and hands down to 0.6 of a glyph's width (a narrow, steep script reads as a 1
otherwise)."""
ELASTIC = 0.5
"""Share of font digits distorted elastically before the preprocessing: a font repeats
its glyph exactly, a hand never does."""
WOBBLE = 0.02
WOBBLE_GRID = 5
"""The distortion's strength (the shifts' standard deviation, in units of the glyph's
side) and smoothness (a random shift at each of 5×5 points, interpolated between them)."""
BLUR = 0.5
"""Share of training digits blurred, by up to 3 % of their size."""
PEN = 0.25
"""Share of training digits drawn as pen strokes (``pen_strokes``) rather than from a font."""
CHUNK = 2_500
"""Digits per drawing task, each chunk from its own seeded generator: the set is the same
whether one process draws it or several."""


def hershey(digit: int, rng: Rng) -> FloatImage:
    """The digit in a random Hershey font, italic half the time, with a pen 4-16 px wide
    at a ~90 px digit height."""
    font = HERSHEY[int(rng.integers(0, len(HERSHEY)))]
    if rng.random() < 0.5:
        font |= cv2.FONT_ITALIC
    image = np.zeros((200, 200), np.uint8)
    cv2.putText(image, str(digit), (55, 150), font, 3.5, (255,), int(rng.integers(4, 17)),
                cv2.LINE_AA)
    return fonts.frame(image.astype(np.float32) / 255.0)


def pen_strokes(digit: int, rng: Rng) -> list[Stroke]:
    """The digit as a hand draws it with a pen, its shape picked at random: how long a
    1's flag is and whether it has a base, a 4 open or closed, a 7 barred or not, a 9's
    tail straight or bent. MNIST's writers rarely draw half of these; users do."""

    def u(low: float, high: float) -> float:
        return float(rng.uniform(low, high))

    def maybe(p: float) -> bool:
        return bool(rng.random() < p)

    if digit == 0:
        start = u(-150, -40)
        return [arc(0.5, 0.5, u(0.18, 0.42), u(0.38, 0.47), start, start + u(330, 390))]
    if digit == 1:
        x, y = u(0.42, 0.6), u(0.03, 0.12)
        flag, angle = u(0.08, 0.45), np.radians(u(15, 70))
        stem = [(x, y), (x + u(-0.06, 0.04), 0.96)]
        tip = (x - flag * float(np.cos(angle)), y + flag * float(np.sin(angle)))
        strokes = [[tip, *stem] if maybe(0.7) else stem]
        if maybe(0.3):
            strokes.append([(x - u(0.12, 0.32), 0.96), (x + u(0.12, 0.32), 0.96)])
        return strokes
    if digit == 2:
        hook = arc(0.5, u(0.25, 0.33), u(0.24, 0.34), u(0.19, 0.27), u(165, 215), u(335, 390))
        corner = (u(0.14, 0.3), u(0.9, 0.96))
        if maybe(0.3):  # a loop where the diagonal meets the base
            curl = arc(corner[0] + 0.08, corner[1] - 0.05, 0.08, 0.06, -90, 90)[::-1]
            return [chain(hook, [corner], curl, [(u(0.72, 0.9), u(0.88, 0.97))])]
        return [chain(hook, [corner, (u(0.72, 0.9), u(0.88, 0.97))])]
    if digit == 3:
        bottom = arc(0.5, u(0.68, 0.74), u(0.26, 0.35), u(0.22, 0.28), u(-100, -80), u(135, 170))
        if maybe(0.3):  # flat-topped
            bar = [(u(0.15, 0.3), 0.05), (u(0.7, 0.85), 0.05), (u(0.38, 0.5), u(0.38, 0.46))]
            return [chain(bar, bottom)]
        return [chain(arc(0.5, u(0.25, 0.3), u(0.2, 0.3), u(0.18, 0.24), u(180, 225), u(420, 460)),
                      bottom)]
    if digit == 4:
        level, at = u(0.55, 0.72), u(0.56, 0.74)  # the cross-bar's height, the stem's x
        kind = int(rng.integers(0, 3))
        if kind == 0:  # closed: one stroke up, down the diagonal, along the bar
            return [[(at, 0.96), (at, u(0.03, 0.1)), (u(0.08, 0.2), level),
                     (u(0.8, 0.92), level)]]
        arm = [(u(0.18, 0.5), 0.04), (u(0.12, 0.25), level), (u(0.8, 0.92), level)]
        return [arm, [(at, u(0.04, 0.4) if kind == 1 else 0.04), (at + u(-0.04, 0.02), 0.96)]]
    if digit == 5:
        bowl = arc(0.48, u(0.66, 0.72), u(0.27, 0.35), u(0.23, 0.28), u(-165, -130), u(125, 165))
        down = [(u(0.26, 0.34), 0.05), (u(0.2, 0.3), u(0.38, 0.48))]
        bar = [(down[0][0], 0.05), (u(0.68, 0.86), u(0.02, 0.08))]
        if maybe(0.5):
            return [chain(bar[::-1], down, bowl)]
        return [chain(down, bowl), bar]
    if digit == 6:
        return [chain([(u(0.58, 0.8), 0.04), (u(0.32, 0.5), u(0.15, 0.3)), (u(0.22, 0.3), 0.58)],
                      arc(0.5, u(0.7, 0.74), u(0.22, 0.29), u(0.2, 0.25), 180, u(500, 545)))]
    if digit == 7:
        start, foot = u(0.1, 0.26), (u(0.28, 0.55), 0.96)
        head = [(start, 0.05), (u(0.74, 0.9), u(0.03, 0.08))]
        if maybe(0.3):  # a serif down from the bar's left end
            head.insert(0, (start, u(0.15, 0.26)))
        middle = [(u(0.5, 0.75), 0.5)] if maybe(0.3) else []  # a bent stem
        sevens = [[*head, *middle, foot]]
        if maybe(0.35):
            sevens.append([(u(0.24, 0.36), u(0.47, 0.55)), (u(0.66, 0.82), u(0.45, 0.53))])
        return sevens
    if digit == 8:
        ux, uy = u(0.17, 0.24), u(0.18, 0.23)  # the upper loop's radii, then the lower's
        lx, ly = u(0.22, 0.31), u(0.21, 0.26)
        if maybe(0.5):
            return [arc(0.5, 0.26, ux, uy, 90, 450), arc(0.5, 0.72, lx, ly, -90, 270)]
        return [chain(arc(0.5, 0.26, ux, uy, 130, 360), [(0.5, 0.5)],
                      arc(0.5, 0.73, lx, ly, -90, 180)[::-1][:-1], [(0.5, 0.5), (0.3, 0.27)])]
    rx = u(0.2, 0.3)
    loop = arc(0.5, u(0.27, 0.32), rx, u(0.19, 0.26), 0, 360)
    if maybe(0.5):
        return [loop, [(0.5 + rx, 0.3), (0.5 + rx + u(-0.1, 0.02), 0.96)]]
    return [loop, [(0.5 + rx, 0.3), (0.5 + rx - u(0.0, 0.06), 0.72), (u(0.45, 0.6), 0.93),
                   (u(0.22, 0.38), u(0.84, 0.92))]]


def distort(ink: FloatImage, rng: Rng) -> FloatImage:
    """Simard's elastic distortion: a smooth random field moves each pixel by about
    ``WOBBLE`` of the glyph's side. The field is drawn on a ``WOBBLE_GRID`` grid and
    enlarged, so it is as smooth at any size, and costs microseconds where a Gaussian
    over the whole glyph cost a millisecond."""
    h, w = ink.shape
    side = max(h, w)
    fields = [cv2.resize(rng.normal(0.0, WOBBLE * side, (WOBBLE_GRID, WOBBLE_GRID))
                         .astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
              for _ in range(2)]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(ink, xs + fields[0], ys + fields[1], cv2.INTER_LINEAR,  # type: ignore[return-value]
                     borderValue=(0,))


def digit_image(paths: list[Path], digit: int, rng: Rng) -> NDArray[np.uint8]:
    """One training digit, 28×28 uint8 as the served preprocessing makes it."""
    style = fonts.draw_style(rng, **STYLE)
    kind = rng.random()
    if kind < PEN:
        # Half bench/writers.py's canvas: a quarter of the pixels, and as fine as the
        # 28×28 digit needs.
        ink = fonts.pen(pen_strokes(digit, rng), rng, style, width=(0.03, 0.14), side=128)
    elif kind < PEN + (1 - PEN) * len(HERSHEY) / (len(HERSHEY) + len(FAMILIES)):
        ink = fonts.transform(hershey(digit, rng), style)
    else:
        ink = fonts.glyph(paths[int(rng.integers(0, len(paths)))], digit, style, pad=4)
    if rng.random() < ELASTIC:
        ink = distort(ink, rng)
    source = int(np.exp(rng.uniform(np.log(10), np.log(110))))
    ink = fonts.coarsen(ink, source, rng)
    if rng.random() < BLUR:
        # Out of focus, or ink run into the paper: the blob a phone makes of a small digit.
        ink = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.3, 0.03 * max(ink.shape)))  # type: ignore[assignment]
    # Paper at 0.9-1, ink at 0-0.45: a photo's contrast, which the preprocessing rescales.
    paper = rng.uniform(0.9, 1.0)
    gray = paper - ink * (paper - rng.uniform(0.0, 0.45))
    return to_mnist(gray.astype(np.float32))


def digits(n: int, seed: int = 0) -> Split:
    """``n`` training digits, labels balanced (0-9 in turn), reproducible from ``seed``.

    Chunks are drawn in parallel, one process per core: a digit takes ~1 ms, so 60,000
    drawn in turn would keep a 2-core trainer's other core idle for most of a minute.
    """
    fonts.require(FACES)
    chunks = [(start, min(CHUNK, n - start), seed) for start in range(0, n, CHUNK)]
    processes = min(len(chunks), len(os.sched_getaffinity(0)))
    parts: list[Split]
    # A daemonic process (a Sanic worker) may not have children; it draws in turn.
    if processes > 1 and not multiprocessing.current_process().daemon:
        # Spawned, not forked: the trainer's MXNet threads would be copied mid-flight.
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(processes, mp_context=context)
        try:
            parts = list(pool.map(draw, chunks))
        finally:  # a trainer stopped (SIGTERM) mid-way must not draw the chunks still queued
            pool.shutdown(cancel_futures=True)
    else:
        parts = [draw(chunk) for chunk in chunks]
    if not parts:
        return Split(np.empty((0, 28, 28), np.uint8), np.empty(0, np.uint8))
    return Split(np.concatenate([p.images for p in parts]),
                 np.concatenate([p.labels for p in parts]))


def draw(chunk: tuple[int, int, int]) -> Split:
    """The digits ``start`` to ``start + n`` of the set ``seed`` names.

    Each family is drawn equally often whatever its number of faces, so the six Comic
    Neue weights do not outvote a hand with one.
    """
    start, n, seed = chunk
    faces_by_family = {family: [fonts.locate(f) for f in FACES if f.family == family]
                       for family in FAMILIES}
    rng = np.random.default_rng((seed, 23, start))
    images = np.empty((n, 28, 28), np.uint8)
    labels = ((start + np.arange(n)) % 10).astype(np.uint8)
    for i in range(n):
        while True:
            family = FAMILIES[int(rng.integers(0, len(FAMILIES)))]
            try:
                images[i] = digit_image(faces_by_family[family], int(labels[i]), rng)
                break
            except BlankImage:  # a hairline glyph shrunk to 10 px and blurred away: redraw
                continue
    return Split(images, labels)
