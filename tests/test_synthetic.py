"""LeNet's training digits from other hands (``nn_server.training.synthetic``): drawn the
same whichever process draws them, MNIST-shaped, mixed into batches at the recipe's share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from nn_server.networks.base import Augmentation
from nn_server.networks.datasets import Split
from nn_server.networks.digits import NO_DIGIT
from nn_server.networks.fonts import FontAugmentation
from nn_server.networks.images import BlankImage
from nn_server.training import synthetic
from nn_server.training.data import Batches

CHUNK = 150
"""Chunks this small make a pool of processes draw a few hundred digits."""


@pytest.fixture(autouse=True, scope="module")
def small_chunks() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(synthetic, "CHUNK", CHUNK)
        yield


@pytest.fixture(scope="module")
def drawn(small_chunks: None) -> Split:
    # Two chunks and a part: drawn by a pool of spawned processes on a 2-core machine.
    return synthetic.digits(2 * CHUNK + 40, seed=5)


def test_digits_are_balanced_mnist_shaped_and_inked(drawn: Split) -> None:
    assert drawn.images.shape == (2 * CHUNK + 40, 28, 28)
    assert drawn.images.dtype == np.uint8
    assert drawn.labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    counts = np.bincount(drawn.labels, minlength=10)
    assert counts.max() - counts.min() <= 1
    # The served preprocessing made them: light ink on black, its peak at full white,
    # centred by mass like MNIST's digits.
    assert (drawn.images.reshape(len(drawn), -1).max(axis=1) == 255).all()
    mass = drawn.images.astype(np.float64)
    rows = (mass.sum(axis=2) * np.arange(28)).sum(axis=1) / mass.sum(axis=(1, 2))
    cols = (mass.sum(axis=1) * np.arange(28)).sum(axis=1) / mass.sum(axis=(1, 2))
    assert np.abs(rows - 13.5).max() < 1.5 and np.abs(cols - 13.5).max() < 1.5
    # Every image is its own draw, not a repeat.
    assert len({image.tobytes() for image in drawn.images}) == len(drawn)


def test_the_same_digits_whichever_process_draws_them(drawn: Split,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # A slice is the bigger set's beginning, drawn in this process (one chunk).
    small = synthetic.digits(CHUNK, seed=5)
    assert (small.images == drawn.images[:CHUNK]).all()
    # The whole set drawn in this process chunk by chunk, as a daemonic worker would.
    monkeypatch.setattr(synthetic.os, "sched_getaffinity", lambda _pid: {0})
    alone = synthetic.digits(len(drawn), seed=5)
    assert (alone.images == drawn.images).all() and (alone.labels == drawn.labels).all()
    assert not (synthetic.digits(CHUNK, seed=6).images == small.images).all()


def test_distortion_moves_ink_but_keeps_it() -> None:
    rng = np.random.default_rng(0)
    ink = np.zeros((120, 80), np.float32)
    ink[20:100, 36:44] = 1.0  # a stroke of a 1
    bent = synthetic.distort(ink, rng)
    assert bent.shape == ink.shape
    assert not np.array_equal(bent, ink)
    # Stretched and squeezed here and there, the stroke keeps most of its ink ...
    assert abs(float(bent.sum()) / float(ink.sum()) - 1) < 0.25
    # ... and bends by a few pixels (WOBBLE of the side), not across the image.
    columns = np.flatnonzero(bent.max(axis=0) > 0.5)
    assert columns.min() >= 30 and columns.max() <= 50


def test_batches_swap_the_recipes_share_for_font_digits() -> None:
    # A data set of blank images labelled 0: every inked image in a batch is a font digit.
    split = Split(np.zeros((400, 28, 28), np.uint8), np.zeros(400, np.uint8))
    aug = FontAugmentation(fonts=0.25, font_digits=400)
    batches = Batches(split, 400, lambda x: x.astype(np.float32), augmentation=aug, seed=0)
    assert len(batches) == 1 and batches.size == 400  # an epoch is one pass over the data
    [(x, y)] = list(batches)
    inked = x.reshape(400, -1).max(axis=1) > 0
    assert 0.15 < inked.mean() < 0.35
    # Font digits carry their own labels, 0-9 in turn.
    assert len(set(y[inked].tolist())) == 10
    assert (y[~inked] == 0).all()
    # Without the share, or when evaluating, no font digit is drawn or mixed in.
    plain = Batches(split, 400, lambda x: x.astype(np.float32), augmentation=Augmentation())
    assert len(plain.split) == 400


def test_pen_digits_stay_in_their_box_and_vary_in_style() -> None:
    rng = np.random.default_rng(2)
    for digit in range(10):
        drawings = [synthetic.pen_strokes(digit, rng) for _ in range(60)]
        points = np.array([p for strokes in drawings for stroke in strokes for p in stroke])
        assert points.min() > -0.1 and points.max() < 1.1, digit
        # Random shapes, not one template: no two drawings alike.
        assert len({str(strokes) for strokes in drawings}) == 60
    ones = [synthetic.pen_strokes(1, rng) for _ in range(200)]
    with_base = sum(len(strokes) == 2 for strokes in ones)
    flagged = sum(len(strokes[0]) == 3 for strokes in ones)
    assert 30 < with_base < 100 and 100 < flagged < 180
    fours = [synthetic.pen_strokes(4, rng) for _ in range(90)]
    assert 10 < sum(len(strokes) == 1 for strokes in fours) < 50  # closed, in one stroke


def test_a_digit_that_comes_out_blank_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # A hairline glyph from a 10-px source, then blurred, can leave no ink to find.
    real, calls = synthetic.digit_image, []

    def blank_once(paths: list[Path], digit: int, rng: np.random.Generator) -> NDArray[np.uint8]:
        calls.append(digit)
        if len(calls) == 2:
            raise BlankImage(NO_DIGIT)
        return real(paths, digit, rng)

    monkeypatch.setattr(synthetic, "digit_image", blank_once)
    split = synthetic.draw((0, 3, 0))
    assert calls == [0, 1, 1, 2]
    assert split.labels.tolist() == [0, 1, 2]
    assert (split.images.reshape(3, -1).max(axis=1) == 255).all()
