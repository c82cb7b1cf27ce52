"""Training batches: shuffled, augmented as the network's recipe says, normalised."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from nn_server.datasets import Split
from nn_server.networks.base import Augmentation

Normalizer = Callable[[NDArray[np.uint8]], NDArray[np.float32]]
ERASE_AREA = (0.02, 0.25)
ERASE_ASPECT = (0.3, 3.3)


class Batches:
    """An epoch-by-epoch iterator over ``(inputs, labels)`` numpy batches.

    Every augmentation is vectorised over the batch. Shifts pad every image once and then
    take a random window per sample through a strided view, so they cost one gather per
    batch instead of a Python loop; flips reverse the columns of a random half; erasing
    masks one rectangle per chosen image with comparisons against coordinate ranges.
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
        _, h, w = split.images.shape
        self.height, self.width = h, w
        shift = self.augmentation.shift
        if shift:
            padded = np.pad(split.images, ((0, 0), (shift, shift), (shift, shift)))
            # (N, 2s+1, 2s+1, H, W): every possible shifted copy, without copying anything.
            self.windows: NDArray[np.uint8] = sliding_window_view(
                padded, (h, w), axis=(1, 2)  # type: ignore[call-overload]
            )

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def augment(self, idx: NDArray[np.intp]) -> NDArray[np.uint8]:
        """The images at ``idx``, randomly changed: (N, H, W) uint8."""
        shift = self.augmentation.shift
        images: NDArray[np.uint8]
        if shift:
            dy, dx = self.rng.integers(0, 2 * shift + 1, size=(2, idx.size))
            images = self.windows[idx, dy, dx]
        else:
            images = self.split.images[idx]
        if self.augmentation.flip:
            mirrored = self.rng.random(idx.size) < 0.5
            images = np.where(mirrored[:, None, None], images[:, :, ::-1], images)
        if self.augmentation.erase:
            images = np.where(self.erasures(idx.size), np.uint8(0), images)
        return images

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
        n = len(self.split)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            images = self.augment(idx) if self.shuffle else self.split.images[idx]
            x = self.normalize(images[:, None, :, :])
            yield x, self.split.labels[idx].astype(np.float32)
