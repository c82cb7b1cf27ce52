"""The ``Network`` abstraction: one fixed pipeline every network follows, and what it owns.

initialise (weights → device) → preprocess (file bytes → uint8 tensor) → infer (batch →
class probabilities) → postprocess (probabilities → predictions) → answer (prediction →
JSON). A network overrides only the stages it needs. Besides its model (``build``) and its
preprocessing, a network owns its labels, its data set (``nn_server.networks.datasets``),
its training ``Recipe`` and its shipped weights with their record: the server, the
trainer, the SDK and the CLI take all of it from the registry, so adding a network is one
module, its weights and one registry line.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from nn_server.core.files import weights_version
from nn_server.core.records import VersionRecord
from nn_server.networks.datasets import Dataset
from nn_server.networks.device import pick_device
from nn_server.networks.images import ImageError, UnreadableImage

if TYPE_CHECKING:  # MXNet loads only where a network is built: workers and the trainer
    import mxnet as mx
    from mxnet.gluon import HybridBlock

log = logging.getLogger("nn_server")

WEIGHTS_DIR = Path(__file__).with_name("weights")
ONNX_INPUT = "image"
"""The input of every exported model (``nn_server.networks.export``)."""
CHECKOUT = Path(__file__).resolve().parents[2]
SAMPLE_INDEX = re.compile(r"^(\d+)_")
"""The source checkout: where ``images/`` (the sample pictures) sits beside the package."""


@dataclass(frozen=True)
class Augmentation:
    """Random changes to training images, applied per batch (``nn_server.training.data``)."""

    shift: int = 0
    """Translate by up to ± this many pixels (zero padding, then a random crop)."""
    flip: bool = False
    """Mirror left-right with probability 1/2 (garments, not digits)."""
    erase: float = 0.0
    """Probability of blanking one random rectangle (2-25 % of the image, aspect 0.3-3.3)
    to the background: random erasing, for networks that must not lean on one part."""
    rotate: float = 0.0
    """Turn by up to ± this many degrees (a page held askew)."""
    shear: float = 0.0
    """Slant by up to ± this shear factor (writing that leans)."""
    scale: float = 0.0
    """Resize by a factor within 1 ± this."""
    elastic: float = 0.0
    """Probability of an elastic distortion (Simard et al., 2003): another hand."""
    stroke: float = 0.0
    """Probability of strokes a pixel thicker or thinner (a marker, a fine pen), either
    way alike."""
    blur: float = 0.0
    """Probability of a slight blur (a 3×3 binomial filter): a camera out of focus."""


@dataclass(frozen=True)
class Recipe:
    """How a network is trained: SGD with Nesterov momentum and a one-cycle learning rate
    (linear warm-up to ``max_learning_rate``, then cosine annealing to 0)."""

    epochs: int
    batch_size: int
    max_learning_rate: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.25
    label_smoothing: float = 0.0
    augmentation: Augmentation = field(default_factory=Augmentation)
    seed: int = 0


@dataclass(frozen=True)
class Prediction:
    """One classified input: the winning label and its index, its probability and every
    class's probability, in ``labels`` order."""

    label: str
    index: int
    confidence: float
    probabilities: tuple[float, ...]


class Network(ABC):
    """A servable, trainable network. Subclasses fix the class attributes, ``build`` and
    ``preprocess``."""

    name: ClassVar[str]
    """URL segment and registry key, e.g. ``"lenet"``."""
    title: ClassVar[str]
    """Human name, e.g. ``"LeNet"``."""
    description: ClassVar[str]
    labels: ClassVar[tuple[str, ...]]
    input_shape: ClassVar[tuple[int, int, int]]
    """(channels, height, width) of one preprocessed input."""
    dataset: ClassVar[Dataset]
    recipe: ClassVar[Recipe]
    samples: ClassVar[str | None] = None
    """Where the network's sample pictures are, relative to the checkout (``"images"``);
    file names start with the label's index (``7_pen.jpg``, ``4_coat.jpg``)."""
    label_key: ClassVar[str | None] = None
    """A second key the answers repeat the label under (LeNet: the original ``"number"``)."""
    mean: ClassVar[float] = 0.0
    std: ClassVar[float] = 1.0
    """The training images' pixel statistics (after scaling to 0..1), for ``normalize``."""

    def __init__(self, device: mx.Context | None = None) -> None:
        self._device = device
        self.block: HybridBlock | None = None
        """The MXNet block, after ``initialize`` (training, evaluation, the MXNet runtime)."""
        self.session: Any = None
        """An ONNX Runtime session, after ``load_onnx`` (how the server serves by default)."""
        self.version: str | None = None
        self.precision = "float"
        """How the forward pass computes: ``int8`` (a quantized ONNX model) or ``float``."""
        self._nd: Any = None  # mxnet.nd, once initialize() has loaded MXNet

    @property
    def device(self) -> mx.Context:
        """The MXNet device, chosen when first needed (preprocessing needs none)."""
        if self._device is None:
            self._device = pick_device()
        return self._device

    # -- what the network owns ------------------------------------------------------------

    @classmethod
    @abstractmethod
    def build(cls) -> HybridBlock:
        """A fresh, uninitialised block; the trainer and ``initialize`` both start here."""

    @classmethod
    def shipped_weights(cls) -> Path:
        """The weights that ship inside the package, so a fresh install classifies."""
        return WEIGHTS_DIR / f"{cls.name}.params"

    @classmethod
    def shipped_record(cls) -> VersionRecord:
        """How the shipped weights were made (accuracy, command, recipe)."""
        return VersionRecord.read(cls.shipped_weights())

    @classmethod
    def sample_files(cls) -> list[Path]:
        """The sample pictures (none in an installed package without the checkout)."""
        if cls.samples is None or not (CHECKOUT / cls.samples).is_dir():
            return []
        suffixes = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
        return sorted(p for p in (CHECKOUT / cls.samples).iterdir()
                      if p.is_file() and p.suffix.lower() in suffixes)

    @classmethod
    def sample_label(cls, path: Path) -> str | None:
        """What a sample shows: its file name starts with the label's index (``7_pen.jpg``,
        ``8_bag.png``); None for a name that does not."""
        match = SAMPLE_INDEX.match(path.name)
        index = int(match.group(1)) if match else None
        return cls.labels[index] if index is not None and index < len(cls.labels) else None

    @classmethod
    def normalize(cls, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        """uint8 images (N, C, H, W) → float32 network input; training uses this too."""
        scale = np.float32(1 / (255.0 * cls.std))
        return images.astype(np.float32) * scale - np.float32(cls.mean / cls.std)

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
        self.infer(np.zeros((1, *self.input_shape), np.uint8))

    def load_onnx(self, model: Path, version: str, precision: str = "float") -> None:
        """Serve from ``model``, the version's ONNX export (``precision``: ``float``) or its
        int8 form (``int8``, ``nn_server.networks.precision``), with ONNX Runtime on one
        thread: no MXNet in the process (a tenth of its memory, and far less per call)."""
        self.session = onnx_session(model.read_bytes())
        self.precision = precision
        self.version = version
        self.infer(np.zeros((1, *self.input_shape), np.uint8))

    @abstractmethod
    def preprocess(self, data: bytes) -> NDArray[np.uint8]:
        """Encoded file bytes → one uint8 input of ``input_shape`` (0..255).

        Raises ``nn_server.networks.images.ImageError`` (or a subclass) for bad input.
        """

    def infer(self, batch: NDArray[np.uint8]) -> NDArray[np.float32]:
        """uint8 (N, *input_shape) → class probabilities (N, len(labels))."""
        if self.session is not None:  # the export's graph normalises its 0..1 input itself
            pixels = batch.astype(np.float32) * np.float32(1 / 255)
            return self.session.run(None, {ONNX_INPUT: pixels})[0]  # type: ignore[no-any-return]
        if self.block is None:
            raise RuntimeError(f"{self.title} is not initialised; call initialize() first")
        x = self._nd.array(self.normalize(batch), ctx=self.device, dtype=np.float32)
        return self._nd.softmax(self.block(x)).asnumpy()  # type: ignore[no-any-return]

    def postprocess(self, probabilities: NDArray[np.float32]) -> list[Prediction]:
        """Class probabilities → one ``Prediction`` per row."""
        best = probabilities.argmax(axis=1)
        return [
            Prediction(
                label=self.labels[int(i)],
                index=int(i),
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
        good: list[NDArray[np.uint8]] = []
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


def onnx_session(model: bytes) -> Any:
    """An ONNX Runtime session for ``model`` as the workers run it: one thread, every graph
    optimisation but one."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no notes about the graph it optimises
    # Left on, this pass moves each uint8 conversion above the max-pooling before it,
    # where ONNX Runtime pools uint8 in NCHW: 35 µs a digit instead of 2.
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=["QDQPropagationTransformer"])
