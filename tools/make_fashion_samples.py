"""Make the Fashion-MNIST sample pictures in ``images/fashion/``: one garment per class,
taken from the Fashion-MNIST *test* set and rendered back into what the set was made
from — a catalogue photo of a dark garment on a light background.

Fashion-MNIST is the negative of Zalando's product photos, shrunk to 28×28; each sample
undoes that: negate, enlarge 3–6× (bicubic), pad with a margin of the backdrop, tint the
backdrop and the garment a little, add sensor noise, and save as JPEG, PNG, BMP or TIFF.
Ten pictures, a few kilobytes each — never the data set itself.

    python tools/make_fashion_samples.py [--data-dir DIR] [--out images/fashion]

File names start with the class index and name (``4_coat.jpg``), which the tests check.
"""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from nn_server.networks import datasets
from nn_server.networks.fashion import FASHION_MNIST, Fashion

OUT = Path(__file__).resolve().parent.parent / "images" / "fashion"
# One test image per class, picked by index (the first of each class the shipped weights
# read correctly, so the samples show what the network can do).
PICKS = {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 1, 7: 0, 8: 0, 9: 0}
FORMATS = ("JPEG", "PNG", "JPEG", "BMP", "JPEG", "PNG", "TIFF", "JPEG", "PNG", "JPEG")
SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "TIFF": ".tiff"}


def slug(label: str) -> str:
    return re.sub(r"[^a-z]+", "_", label.lower()).strip("_")


def catalogue_photo(garment: NDArray[np.uint8], rng: np.random.Generator) -> Image.Image:
    """A 28×28 Fashion-MNIST image (light on black) as a colour photo on a light backdrop."""
    scale = int(rng.integers(3, 7))
    side = 28 * scale
    dark = Image.fromarray(255 - garment).resize((side, side), Image.Resampling.BICUBIC)
    margin = int(rng.integers(side // 10, side // 4))
    backdrop = np.array([rng.integers(232, 256) for _ in range(3)], np.float32)
    canvas = np.ones((side + 2 * margin, side + 2 * margin, 3), np.float32) * backdrop
    shade = np.asarray(dark, np.float32)[:, :, None] / 255.0  # 1 = backdrop, 0 = garment
    tint = np.array([rng.integers(20, 90) for _ in range(3)], np.float32)  # the cloth colour
    canvas[margin:-margin, margin:-margin] = shade * backdrop + (1 - shade) * tint
    canvas += rng.normal(0, 2.0, canvas.shape)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--picks", default=None,
                        help="class=nth,... which test image of each class to use")
    args = parser.parse_args(argv)
    picks = dict(PICKS)
    if args.picks:
        for item in args.picks.split(","):
            klass, nth = item.split("=")
            picks[int(klass)] = int(nth)
    test = datasets.load_split(FASHION_MNIST, "test", args.data_dir)
    rng = np.random.default_rng(0)
    args.out.mkdir(parents=True, exist_ok=True)
    for klass, label in enumerate(Fashion.labels):
        index = int(np.flatnonzero(test.labels == klass)[picks[klass]])
        photo = catalogue_photo(test.images[index], rng)
        fmt = FORMATS[klass]
        if fmt == "PNG" and klass % 2:
            photo = photo.convert("L")  # grey pictures too
        buffer = io.BytesIO()
        photo.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        path = args.out / f"{klass}_{slug(label)}{SUFFIX[fmt]}"
        path.write_bytes(buffer.getvalue())
        print(f"{path.name}: test image #{index}, {photo.size[0]}x{photo.size[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
