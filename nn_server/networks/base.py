"""The ``Network`` abstraction: one fixed pipeline every network follows.

initialise (weights → device) → preprocess (file bytes → tensor) → infer (batch → class
probabilities) → postprocess (probabilities → predictions). A network overrides only the
stages it needs; the server and the trainer talk to networks through this class alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from nn_server.device import pick_device
from nn_server.preprocessing import ImageError, UnreadableImage
from nn_server.records import weights_version

if TYPE_CHECKING:  # MXNet loads only where a network is built: workers and the trainer
    import mxnet as mx
    from mxnet.gluon import HybridBlock

WEIGHTS_DIR = Path(__file__).with_name("weights")


@dataclass(frozen=True)
class Prediction:
    """One classified input: the winning label, its probability and all class probabilities."""

    label: str
    confidence: float
    probabilities: tuple[float, ...]


class Network(ABC):
    """A servable, trainable network. Subclasses fix the class attributes and ``build``."""

    name: ClassVar[str]
    """URL segment and registry key, e.g. ``"lenet"``."""
    title: ClassVar[str]
    """Human name, e.g. ``"LeNet"``."""
    description: ClassVar[str]
    labels: ClassVar[tuple[str, ...]]
    input_shape: ClassVar[tuple[int, int, int]]
    """(channels, height, width) of one preprocessed input."""

    def __init__(self, device: mx.Context | None = None) -> None:
        self.device = device if device is not None else pick_device()
        self.block: HybridBlock | None = None
        self.version: str | None = None
        self._nd: Any = None  # mxnet.nd, once initialize() has loaded MXNet

    # -- construction ---------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def build(cls) -> HybridBlock:
        """A fresh, uninitialised block; the trainer and ``initialize`` both start here."""

    @classmethod
    def shipped_weights(cls) -> Path:
        """The weights that ship inside the package, so a fresh install classifies."""
        return WEIGHTS_DIR / f"{cls.name}.params"

    @classmethod
    def normalize(cls, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        """uint8 images (N, C, H, W) → float32 network input; training uses this too."""
        return images.astype(np.float32) / 255.0

    # -- the pipeline ---------------------------------------------------------------------

    def initialize(self, weights: Path | None = None) -> None:
        """Load ``weights`` (default: the shipped ones) onto the device and warm up."""
        import mxnet as mx  # here, not at import: only workers and trainers load MXNet

        self._nd = mx.nd
        path = Path(weights) if weights is not None else self.shipped_weights()
        block = self.build()
        block.load_parameters(str(path), ctx=self.device)
        block.hybridize(static_alloc=True)
        self.block = block
        self.version = weights_version(path)
        self.infer(np.zeros((1, *self.input_shape), np.float32))

    @abstractmethod
    def preprocess(self, data: bytes) -> NDArray[np.float32]:
        """Encoded file bytes → one float32 input of ``input_shape``.

        Raises ``nn_server.preprocessing.ImageError`` (or a subclass) for bad input.
        """

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """float32 (N, *input_shape) → class probabilities (N, len(labels))."""
        if self.block is None:
            raise RuntimeError(f"{self.title} is not initialised; call initialize() first")
        x = self._nd.array(batch, ctx=self.device, dtype=np.float32)
        return self._nd.softmax(self.block(x)).asnumpy()  # type: ignore[no-any-return]

    def postprocess(self, probabilities: NDArray[np.float32]) -> list[Prediction]:
        """Class probabilities → one ``Prediction`` per row."""
        best = probabilities.argmax(axis=1)
        return [
            Prediction(
                label=self.labels[int(i)],
                confidence=float(row[i]),
                probabilities=tuple(round(float(p), 6) for p in row),
            )
            for i, row in zip(best, probabilities, strict=True)
        ]

    def classify(self, images: Sequence[bytes]) -> list[Prediction]:
        """The whole pipeline for encoded images; the first bad one raises its error."""
        results = self.classify_each(images)
        for result in results:
            if isinstance(result, ImageError):
                raise result
        return results  # type: ignore[return-value]  # no errors left, only predictions

    def classify_each(self, images: Sequence[bytes]) -> list[Prediction | ImageError]:
        """Like ``classify``, but a bad image yields its ``ImageError`` in its own slot
        instead of failing the batch; the good ones still share one forward pass."""
        results: list[Prediction | ImageError | None] = []
        good: list[NDArray[np.float32]] = []
        for data in images:
            try:
                good.append(self.preprocess(data))
                results.append(None)  # filled from the shared forward pass below
            except ImageError as exc:
                results.append(exc)
            except Exception as exc:  # a decoder's own complaint about an odd file
                results.append(UnreadableImage(f"image could not be read ({exc})"))
        predictions = iter(self.postprocess(self.infer(np.stack(good))) if good else [])
        return [next(predictions) if r is None else r for r in results]
