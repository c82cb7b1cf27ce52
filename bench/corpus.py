"""The request corpus: 50 real digit files (PNG and JPEG, 28..112 px) made from images/."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from nn_server.networks.images import to_gray

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
CORPUS_SIZE = 50


def digit_files() -> list[Path]:
    return sorted(p for p in IMAGES_DIR.iterdir() if p.name[0].isdigit() and p.is_file())


def make_corpus(size: int = CORPUS_SIZE, seed: int = 0) -> list[bytes]:
    """``size`` encoded images: the project's sample digits at random sizes in 28..112 px,
    alternating PNG and JPEG, as a client would upload them."""
    rng = np.random.default_rng(seed)
    # to_gray reads every mode the samples use (16-bit, palette, alpha, EXIF rotation);
    # PIL's own convert("RGB") would clip a 16-bit image to white.
    sources = [
        Image.fromarray((to_gray(Image.open(p)) * 255).astype(np.uint8)).convert("RGB")
        for p in digit_files()
    ]
    corpus: list[bytes] = []
    for i in range(size):
        image = sources[i % len(sources)]
        side = int(rng.integers(28, 113))
        scale = side / max(image.size)
        resized = image.resize(
            (max(28, round(image.width * scale)), max(28, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
        buf = io.BytesIO()
        resized.save(buf, "PNG" if i % 2 else "JPEG", quality=90)
        corpus.append(buf.getvalue())
    return corpus


def single_bodies(corpus: list[bytes]) -> list[bytes]:
    """``{"image": b64}`` request bodies, one per corpus file."""
    return [json.dumps({"image": base64.b64encode(b).decode()}).encode() for b in corpus]


def batch_body(corpus: list[bytes], count: int) -> bytes:
    """One ``{"images": [...]}`` body of ``count`` images drawn round-robin from the corpus."""
    images = [base64.b64encode(corpus[i % len(corpus)]).decode() for i in range(count)]
    return json.dumps({"images": images}).encode()
