"""Training digits from other hands than MNIST's: fonts and OpenCV's Hershey strokes.

MNIST's writers rarely make an open-topped 4, a 1 with a flag and a base or a barred 7;
many users do. ``digits`` draws such digits from the *training* faces below — handwriting
and typeset fonts from Debian packages, none of the families ``bench/writers.py``
measures with — and from OpenCV's built-in Hershey stroke fonts (no package), each at a
random stroke width, slant, turn, width and source resolution (``nn_server.networks.
fonts``), mildly distorted, then turned into 28×28 MNIST-style digits by the served
preprocessing itself (``digits.to_mnist``), so they look to LeNet as a user's photo of
them would. ``nn_server.training.data.Batches`` mixes them into MNIST's batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from nn_server.networks import fonts
from nn_server.networks.datasets import Split
from nn_server.networks.digits import to_mnist
from nn_server.networks.fonts import Face, FloatImage, Rng

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
)
FAMILIES = tuple(dict.fromkeys(face.family for face in FACES))
PACKAGES = tuple(dict.fromkeys(face.package for face in FACES))
HERSHEY = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
           cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
           cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
"""OpenCV's stroke fonts: a pen's centre line, drawn at any width, plain or italic."""
STYLE: dict[str, Any] = {}
"""How far ``fonts.draw_style`` varies the training glyphs (its defaults where unset)."""
ELASTIC = 0.5
"""Share of font digits distorted elastically before the preprocessing: a font repeats
its glyph exactly, a hand never does."""


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


def distort(ink: FloatImage, rng: Rng) -> FloatImage:
    """Simard's elastic distortion at the glyph's own resolution, gentle (alpha 0.5 and
    sigma 0.12 of the side) so that a digit stays the digit."""
    side = max(ink.shape)
    fields = [cv2.GaussianBlur(rng.uniform(-1, 1, ink.shape).astype(np.float32), (0, 0),
                               0.12 * side) * 0.5 * side for _ in range(2)]
    ys, xs = np.mgrid[0 : ink.shape[0], 0 : ink.shape[1]].astype(np.float32)
    return cv2.remap(ink, xs + fields[0], ys + fields[1], cv2.INTER_LINEAR,  # type: ignore[return-value]
                     borderValue=(0,))


def digit_image(paths: list[Path], digit: int, rng: Rng) -> NDArray[np.uint8]:
    """One training digit, 28×28 uint8 as the served preprocessing makes it."""
    style = fonts.draw_style(rng, **STYLE)
    if rng.random() < len(HERSHEY) / (len(HERSHEY) + len(FAMILIES)):
        ink = fonts.transform(hershey(digit, rng), style)
    else:
        ink = fonts.glyph(paths[int(rng.integers(0, len(paths)))], digit, style)
    if rng.random() < ELASTIC:
        ink = distort(ink, rng)
    source = int(np.exp(rng.uniform(np.log(10), np.log(110))))
    ink = fonts.coarsen(ink, source, rng)
    # Paper at 0.9-1, ink at 0-0.45: a photo's contrast, which the preprocessing rescales.
    paper = rng.uniform(0.9, 1.0)
    gray = paper - ink * (paper - rng.uniform(0.0, 0.45))
    return to_mnist(gray.astype(np.float32))


def digits(n: int, seed: int = 0) -> Split:
    """``n`` font digits, labels balanced (0-9 in turn), reproducible from ``seed``.

    Each family is drawn equally often whatever its number of faces, so the six Comic
    Neue weights do not outvote a hand with one.
    """
    faces_by_family = {family: [f for f in FACES if f.family == family] for family in FAMILIES}
    fonts.require(FACES)
    rng = np.random.default_rng((seed, 23))
    images = np.empty((n, 28, 28), np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    for i in range(n):
        family = FAMILIES[int(rng.integers(0, len(FAMILIES)))]
        paths = [fonts.locate(face) for face in faces_by_family[family]]
        images[i] = digit_image(paths, int(labels[i]), rng)
    return Split(images, labels)
