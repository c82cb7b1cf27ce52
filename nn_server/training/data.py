"""Training batches: shuffled, normalised, optionally shifted by up to ±N pixels."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from nn_server.mnist import Split

Normalizer = Callable[[NDArray[np.uint8]], NDArray[np.float32]]


class Batches:
    """An epoch-by-epoch iterator over ``(inputs, labels)`` numpy batches.

    Shift augmentation pads every image once and then takes a random 28×28 window per sample
    through a strided view, so it costs one gather per batch instead of a Python loop.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        normalize: Normalizer,
        *,
        shuffle: bool = True,
        shift: int = 0,
        seed: int = 0,
    ) -> None:
        self.split = split
        self.batch_size = batch_size
        self.normalize = normalize
        self.shuffle = shuffle
        self.shift = shift
        self.rng = np.random.default_rng(seed)
        _, h, w = split.images.shape
        self.height, self.width = h, w
        if shift:
            padded = np.pad(split.images, ((0, 0), (shift, shift), (shift, shift)))
            # (N, 2s+1, 2s+1, H, W): every possible shifted copy, without copying anything.
            self.windows: NDArray[np.uint8] = sliding_window_view(
                padded, (h, w), axis=(1, 2)  # type: ignore[call-overload]
            )

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[NDArray[np.float32], NDArray[np.float32]]]:
        n = len(self.split)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.shift:
                dy, dx = self.rng.integers(0, 2 * self.shift + 1, size=(2, idx.size))
                images = self.windows[idx, dy, dx]
            else:
                images = self.split.images[idx]
            x = self.normalize(images[:, None, :, :])
            yield x, self.split.labels[idx].astype(np.float32)
