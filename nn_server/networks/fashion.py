"""Fashion-MNIST: one garment per picture, in Zalando's ten classes, with a small ResNet
from gluoncv's model zoo.

The model is gluoncv's CIFAR ResNet (``CIFARResNetV1`` with basic blocks) at ResNet-14
depth, which works on 1×28×28 as it is: the first convolution infers its one input
channel, and the three stages run at 28, 14 and 7 px. It is trained with gluoncv's
learning-rate schedulers (``nn_server.training.loop``), label smoothing, and shifts, flips
and random erasing done on whole batches in NumPy (``nn_server.training.data``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray

from nn_server.networks.base import Augmentation, Network, Recipe
from nn_server.networks.datasets import Dataset
from nn_server.networks.images import (
    WORK_SIDE,
    BlankImage,
    FloatImage,
    border_level,
    quantiles,
    read_gray,
    shrink,
)

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock

SIDE = 28
BLOCKS = (2, 2, 2)
"""Basic blocks per stage: ResNet-14."""
STAGES = (16, 32, 64)
"""Channels of the three stages (the stem has the first's)."""
FINAL_SIDE = 7
"""The last stage's feature maps are 7×7 (28 px halved twice)."""
# A pixel belongs to the garment when it differs from the background by this much (0..1).
OBJECT_THRESHOLD = 0.04
CROP_SHARE = 0.2
"""The crop keeps pixels at least this share of the brightest: an enlarged picture's soft
edges (and a JPEG's ringing) would otherwise widen the box past the garment."""
BACKGROUND_QUANTILE = 0.2
"""The border's background level: its darkest fifth (light garments on black) or
brightest fifth (photos), not its median, which a garment touching the edge pulls."""
NATIVE_BORDER = 0.1
"""A 28×28 image whose border is this dark is Fashion-MNIST's own format."""

FASHION_MNIST = Dataset(
    title="Fashion-MNIST",
    folder="fashion-mnist",
    # Digests of the decompressed files (Zalando's releases and Debian's package agree).
    digests={
        "train-images-idx3-ubyte":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    # Debian's dataset-fashion-mnist package.
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
)


def object_map(gray: FloatImage) -> FloatImage:
    """The garment as Fashion-MNIST draws it: light on black, background at 0.

    Fashion-MNIST is the *negative* of catalogue photos (a garment on white), with no
    contrast stretch, so a white T-shirt stays dim. Polarity comes from the border, which
    is background in both. The background's level is taken from the border's far side (a
    garment that touches the edge shows up in the border, on the near side) and maps to
    0; the other end of the scale maps to 1.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border_level(gray) > 0.5:  # a photo: a garment on a light background
        (level,) = quantiles(border, 1 - BACKGROUND_QUANTILE)
        return np.clip((level - gray) / max(level, 1e-3), 0.0, 1.0)
    (level,) = quantiles(border, BACKGROUND_QUANTILE)
    return np.clip((gray - level) / max(1.0 - level, 1e-3), 0.0, 1.0)


def crop_to_object(garment: FloatImage) -> FloatImage:
    """The tight box around the garment, ignoring specks in otherwise empty rows/columns."""
    mask = garment > max(OBJECT_THRESHOLD, CROP_SHARE * float(garment.max()))
    rows = np.flatnonzero(mask.sum(axis=1) >= max(1, mask.shape[1] // 100))
    cols = np.flatnonzero(mask.sum(axis=0) >= max(1, mask.shape[0] // 100))
    if rows.size == 0 or cols.size == 0:
        raise BlankImage("no garment found: the image is blank or has no contrast")
    return garment[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def to_fashion_mnist(gray: FloatImage) -> NDArray[np.uint8]:
    """Crop to the garment, scale its longer side to 28 keeping the aspect, centre it."""
    garment = crop_to_object(object_map(shrink(gray, WORK_SIDE)))
    h, w = garment.shape
    scale = SIDE / max(h, w)
    size = (max(1, min(SIDE, round(w * scale))), max(1, min(SIDE, round(h * scale))))
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = np.clip(cv2.resize(garment, size, interpolation=method), 0.0, 1.0)
    canvas = np.zeros((SIDE, SIDE), np.float32)
    top, left = (SIDE - size[1]) // 2, (SIDE - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = resized
    return (canvas * 255.0 + 0.5).astype(np.uint8)


def prepare_garment(data: bytes) -> NDArray[np.uint8]:
    """Encoded image bytes → uint8 (28, 28), a light garment on black, ready to normalise.
    A Fashion-MNIST image itself (28×28, light on black) is already that, and passes."""
    gray = read_gray(data)
    native = gray.shape == (SIDE, SIDE) and border_level(gray) < NATIVE_BORDER
    if native and gray.max() > OBJECT_THRESHOLD:
        return (gray * 255.0 + 0.5).astype(np.uint8)
    return to_fashion_mnist(gray)


class Fashion(Network):
    """Classifies the garment in a picture into the ten Fashion-MNIST classes."""

    name = "fashion"
    title = "Fashion-MNIST"
    labels = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    input_shape = (1, 28, 28)
    dataset = FASHION_MNIST
    samples = "images/fashion"
    recipe = Recipe(
        epochs=13, batch_size=128, max_learning_rate=0.2, momentum=0.9, weight_decay=5e-4,
        warmup_fraction=1 / 13, label_smoothing=0.1,
        augmentation=Augmentation(shift=2, flip=True, erase=0.25), seed=0,
    )
    # Fashion-MNIST's training images' pixel statistics after scaling to 0..1.
    mean = 0.286041
    std = 0.353024
    description = (
        "Fashion-MNIST classifies the garment in a picture into Zalando's ten classes "
        f"({', '.join(labels)}). It is gluoncv's CIFAR ResNet at ResNet-14 depth "
        f"(basic blocks; {STAGES[0]}, {STAGES[1]} and {STAGES[2]} channels in three stages at "
        "28, 14 and 7 px), built with MXNet Gluon and trained on the 60,000 Fashion-MNIST "
        "images with ±2 px shifts, mirror flips, random erasing, label smoothing and a "
        "warm-up + cosine learning rate. Input: a .jpg/.png/.bmp/.tiff picture of one "
        "garment, colour or grey, at least 28x28 px — a product photo on a light "
        "background, or Fashion-MNIST's own light-on-black images."
    )

    @classmethod
    def build(cls) -> HybridBlock:
        """gluoncv's CIFAR ResNet-14, its global average pooling written as a sum: with
        MXNet 1.9's oneDNN, the hybridized backward of ``GlobalAvgPool2D`` falls back to
        reference kernels and makes a training step ~3× slower. A sum over the 7×7 map,
        scaled, is the same function with a fast backward (and, unlike ``mean``, MXNet's
        ONNX exporter writes it in a form today's opsets accept)."""
        from gluoncv.model_zoo.cifarresnet import CIFARBasicBlockV1, CIFARResNetV1
        from mxnet.gluon import nn

        class GlobalMean(nn.HybridBlock):  # type: ignore[misc]
            def hybrid_forward(self, F: Any, x: Any) -> Any:
                return F.sum(x, axis=(2, 3)) * (1 / FINAL_SIDE**2)

        block = CIFARResNetV1(CIFARBasicBlockV1, list(BLOCKS), [STAGES[0], *STAGES],
                              classes=len(cls.labels))
        features = block.features._children
        [pooling] = [name for name, child in features.items()
                     if isinstance(child, nn.GlobalAvgPool2D)]
        features[pooling] = GlobalMean(prefix="gmean_")
        return block

    def preprocess(self, data: bytes) -> NDArray[np.uint8]:
        return prepare_garment(data)[None, :, :]
