"""Training batches: shuffled, augmented as the network's recipe says, normalised."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from nn_server.networks.base import Augmentation
from nn_server.networks.datasets import Split
from nn_server.networks.fonts import FontAugmentation

Normalizer = Callable[[NDArray[np.uint8]], NDArray[np.float32]]
ERASE_AREA = (0.02, 0.25)
ERASE_ASPECT = (0.3, 3.3)
ELASTIC_FIELDS = 512
"""Displacement fields drawn once per run; each distortion picks one and a random sign."""
ELASTIC_ALPHA = 0.25
ELASTIC_SIGMA = 0.15
"""Strength and smoothness of the elastic fields, in units of the image side (7 and 4 px at
28): Simard's distortion, gentler than his 34 px, so digits stay legible."""


class Batches:
    """An epoch-by-epoch iterator over ``(inputs, labels)`` numpy batches.

    Augmentations are vectorised over the batch where NumPy can: shifts pad every image
    once and take a random window per sample through a strided view (one gather per
    batch); flips reverse the columns of a random half; erasing masks one rectangle per
    chosen image; thicker and thinner strokes are a 2×2 maximum or minimum over shifted
    views, and blur a binomial filter over them. Turning, slanting, resizing and elastic
    distortion are one OpenCV warp per image (microseconds at 28×28), the elastic fields
    drawn once per run. A ``FontAugmentation`` adds digits drawn from training fonts
    (``nn_server.training.synthetic``), made once per run and placed behind the data set's
    own; each training batch swaps a ``fonts`` share of its images for them, so an epoch
    stays one pass over the data set and takes as long as before.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        normalize: Normalizer,
        *,
        shuffle: bool = True,
        augmentation: Augmentation | None = None,
        seed: int = 0,
    ) -> None:
        self.split = split
        self.batch_size = batch_size
        self.normalize = normalize
        self.shuffle = shuffle
        self.augmentation = augmentation or Augmentation()
        self.rng = np.random.default_rng(seed)
        self.size = len(split)
        self.font_share = 0.0
        aug = self.augmentation
        if shuffle and isinstance(aug, FontAugmentation) and aug.fonts and aug.font_digits:
            from nn_server.training.synthetic import digits  # PIL and the fonts: only here

            # No more font digits than the data set has: a quick run on a subset (tests,
            # trial runs) must not wait a minute for 30,000 of them.
            extra = digits(min(aug.font_digits, len(split)), seed)
            split = Split(np.concatenate([split.images, extra.images]),
                          np.concatenate([split.labels, extra.labels]))
            self.split, self.font_share = split, aug.fonts
        _, h, w = split.images.shape
        self.height, self.width = h, w
        self.fields = elastic_fields(self.rng, h, w) if aug.elastic else None
        shift = aug.shift
        if shift:
            padded = np.pad(split.images, ((0, 0), (shift, shift), (shift, shift)))
            # (N, 2s+1, 2s+1, H, W): every possible shifted copy, without copying anything.
            self.windows: NDArray[np.uint8] = sliding_window_view(
                padded, (h, w), axis=(1, 2)  # type: ignore[call-overload]
            )

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)


    def augment(self, idx: NDArray[np.intp]) -> NDArray[np.uint8]:
        """The images at ``idx``, randomly changed: (N, H, W) uint8."""
        shift = self.augmentation.shift
        images: NDArray[np.uint8]
        if shift:
            dy, dx = self.rng.integers(0, 2 * shift + 1, size=(2, idx.size))
            images = self.windows[idx, dy, dx]
        else:
            images = self.split.images[idx]
        aug = self.augmentation
        if aug.rotate or aug.shear or aug.scale or aug.elastic:
            images = self.warp(images)
        if aug.stroke:
            images = self.restroke(images)
        if aug.blur:
            chosen = self.rng.random(idx.size) < aug.blur
            images = np.where(chosen[:, None, None], binomial_blur(images), images)
        if aug.flip:
            mirrored = self.rng.random(idx.size) < 0.5
            images = np.where(mirrored[:, None, None], images[:, :, ::-1], images)
        if aug.erase:
            images = np.where(self.erasures(idx.size), np.uint8(0), images)
        return images

    def warp(self, images: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Each image turned, slanted and resized about its centre, some distorted."""
        aug, n = self.augmentation, images.shape[0]
        angles = self.rng.uniform(-aug.rotate, aug.rotate, n)
        shears = self.rng.uniform(-aug.shear, aug.shear, n)
        scales = 1 + self.rng.uniform(-aug.scale, aug.scale, n)
        distort = self.rng.random(n) < aug.elastic
        picks = self.rng.integers(0, ELASTIC_FIELDS, n)
        signs = self.rng.choice((-1.0, 1.0), (n, 2))
        centre = (self.width / 2 - 0.5, self.height / 2 - 0.5)
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        out = np.empty_like(images)
        for i in range(n):
            matrix = cv2.getRotationMatrix2D(centre, float(angles[i]), float(scales[i]))
            matrix[0, 1] += shears[i]
            matrix[0, 2] -= shears[i] * centre[1]
            warped = cv2.warpAffine(images[i], matrix, (self.width, self.height),
                                    flags=cv2.INTER_LINEAR, borderValue=(0,))
            if distort[i] and self.fields is not None:
                dx, dy = (self.fields[picks[i]] * signs[i][:, None, None]).astype(np.float32)
                warped = cv2.remap(warped, xs + dx, ys + dy, cv2.INTER_LINEAR, borderValue=(0,))
            out[i] = warped
        return out

    def restroke(self, images: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """A random ``stroke`` share of the images one pixel thicker, or thinner (half each)."""
        n = images.shape[0]
        chosen = self.rng.random(n) < self.augmentation.stroke
        thicker = self.rng.random(n) < 0.5
        padded = np.pad(images, ((0, 0), (0, 1), (0, 1)))
        views = [padded[:, dy : dy + self.height, dx : dx + self.width]
                 for dy in (0, 1) for dx in (0, 1)]
        changed = np.where(thicker[:, None, None], np.maximum.reduce(views),
                           np.minimum.reduce(views))
        return np.where(chosen[:, None, None], changed, images)

    def erasures(self, n: int) -> NDArray[np.bool_]:
        """One random rectangle per image, for a random ``erase`` share of them: (n, H, W)."""
        area = self.rng.uniform(*ERASE_AREA, n) * self.height * self.width
        low, high = np.log(ERASE_ASPECT)
        aspect = np.exp(self.rng.uniform(low, high, n))
        h = np.clip(np.round(np.sqrt(area * aspect)), 1, self.height).astype(np.int64)
        w = np.clip(np.round(np.sqrt(area / aspect)), 1, self.width).astype(np.int64)
        top = (self.rng.random(n) * (self.height - h + 1)).astype(np.int64)
        left = (self.rng.random(n) * (self.width - w + 1)).astype(np.int64)
        chosen = self.rng.random(n) < self.augmentation.erase
        rows, cols = np.arange(self.height), np.arange(self.width)
        in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])
        in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])
        mask: NDArray[np.bool_] = in_rows[:, :, None] & in_cols[:, None, :] & chosen[:, None, None]
        return mask

    def __iter__(self) -> Iterator[tuple[NDArray[np.float32], NDArray[np.float32]]]:
        n = self.size
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        extra = len(self.split) - n
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.font_share:
                swapped = self.rng.random(idx.size) < self.font_share
                idx = np.where(swapped, n + self.rng.integers(0, extra, idx.size), idx)
            images = self.augment(idx) if self.shuffle else self.split.images[idx]
            x = self.normalize(images[:, None, :, :])
            yield x, self.split.labels[idx].astype(np.float32)


def elastic_fields(rng: np.random.Generator, height: int, width: int) -> NDArray[np.float32]:
    """``ELASTIC_FIELDS`` smooth random displacement fields, (K, 2, H, W) in pixels."""
    side = min(height, width)
    noise = rng.uniform(-1, 1, (ELASTIC_FIELDS, 2, height, width)).astype(np.float32)
    fields = np.empty_like(noise)
    for k in range(ELASTIC_FIELDS):
        for axis in (0, 1):
            smooth = cv2.GaussianBlur(noise[k, axis], (0, 0), ELASTIC_SIGMA * side)
            fields[k, axis] = smooth * (ELASTIC_ALPHA * side / max(1e-6, float(
                np.abs(smooth).max())))
    return fields


def binomial_blur(images: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A 3×3 binomial filter ([1, 2, 1] ⊗ [1, 2, 1] / 16) over every image at once."""
    padded = np.pad(images.astype(np.uint16), ((0, 0), (1, 1), (1, 1)), mode="edge")
    rows = padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]
    both = rows[:, :, :-2] + 2 * rows[:, :, 1:-1] + rows[:, :, 2:]
    blurred: NDArray[np.uint8] = ((both + 8) // 16).astype(np.uint8)
    return blurred
