"""A throw-away third network, kept outside the package: it joins a server through
``NN_EXTRA_NETWORKS=tests.throwaway:Tiny`` (or a test's in-process registration) with no
change anywhere else. It has no shipped weights, so it answers 503 until it is trained."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import NDArray

from nn_server.networks import Network, Recipe
from nn_server.networks.images import border_level, read_gray
from nn_server.networks.lenet import MNIST

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock

ENTRY = "tests.throwaway:Tiny"


class Tiny(Network):
    """Digits with one dense layer: seconds to train, good enough to be told apart."""

    name = "tiny"
    title = "Tiny"
    description = "A throw-away test network: one dense layer over MNIST digits."
    labels = tuple(str(d) for d in range(10))
    input_shape = (1, 28, 28)
    dataset = MNIST
    recipe = Recipe(epochs=1, batch_size=64, max_learning_rate=0.1, warmup_fraction=0.1)

    @classmethod
    def build(cls) -> HybridBlock:
        from mxnet.gluon import nn

        block = nn.HybridSequential()
        block.add(nn.Flatten(), nn.Dense(10))
        return block

    def preprocess(self, data: bytes) -> NDArray[np.uint8]:
        gray = read_gray(data)
        if border_level(gray) > 0.5:  # dark on light: make it MNIST's light on dark
            gray = 1.0 - gray
        small = cv2.resize(gray, (28, 28), interpolation=cv2.INTER_AREA)
        return (np.clip(small, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)[None]
