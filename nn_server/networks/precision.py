"""Which precision a version is served in: measured when the version is made, not assumed.

A version's float ONNX export is quantized to int8 with ONNX Runtime's own tooling
(``onnxruntime.quantization.quantize_static``: QDQ, int8 weights per output channel, uint8
activations from min/max calibration on training images), and both forms are scored on the
test set. The int8 form is served only where it is within ``TOLERANCE`` (0.1 points) of the
float one; the record beside the weights says what was measured and what is served:

    "accuracies": {"float": "99.55", "int8": "99.54"}, "precision": "int8"

    python -m nn_server.networks.precision --network lenet WEIGHTS.params

measures saved weights (exporting them to ONNX first where there is no export), writes
``WEIGHTS.int8.onnx`` beside them and adds the figures to their record; the training does
the same in its own process, and the server for weights it is seeded with.

The first convolution, the last layer and the softmax stay float (``float_nodes`` says
why). Batch norm after a dense layer
(LeNet's) is folded into it first, as ONNX Runtime's pre-processing does for convolutions.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nn_server.core.files import write_atomic
from nn_server.core.records import Precision, VersionRecord
from nn_server.networks import Network, datasets, load_registry, network_class
from nn_server.networks.base import ONNX_INPUT, onnx_session

TOLERANCE = 0.001
"""How far below float int8 may score (0..1) and still be served: 0.1 points."""
CALIBRATION_IMAGES = 1000
CALIBRATION_SEED = 0
INT8_SUFFIX = ".int8.onnx"
"""``<v>.params`` → ``<v>.int8.onnx``, beside the float export ``<v>.onnx``."""
BATCH = 1000

log = logging.getLogger("nn_server")


@dataclass(frozen=True)
class Measurement:
    """A version's accuracy in each precision it can be served in, and the verdict."""

    accuracies: dict[str, str]
    """Percent as text, the records' format: ``{"float": "99.55", "int8": "99.54"}``."""
    precision: Precision
    """``int8`` when it is within ``TOLERANCE`` of float, else ``float``."""


def int8_of(weights: Path) -> Path:
    """Where the int8 model of ``weights`` (``<v>.params``) lives: ``<v>.int8.onnx``."""
    return Path(weights).with_suffix(INT8_SUFFIX)


def choose(float_accuracy: float, int8_accuracy: float) -> Precision:
    """The rule: int8 only where it loses at most ``TOLERANCE``."""
    return "int8" if int8_accuracy >= float_accuracy - TOLERANCE - 1e-12 else "float"


def served_precision(record: VersionRecord, runtime: str, precision: str) -> Precision:
    """How workers with this runtime and ``NN_PRECISION`` compute the version ``record``
    describes: ``int8`` only in ONNX Runtime, and only where its int8 form was measured as
    good (the record says ``"precision": "int8"``)."""
    return "int8" if runtime == "onnx" and precision == "int8" \
        and record.precision == "int8" else "float"


def served_model(weights: Path, runtime: str, precision: str) -> tuple[Path, Precision]:
    """The ONNX model workers with this runtime and ``NN_PRECISION`` load for ``weights``,
    and the precision it computes in: the int8 form where the record chose it, else the
    float export (also where the int8 form was lost or never copied: float is as good)."""
    computes = served_precision(VersionRecord.read(weights), runtime, precision)
    if computes == "int8" and int8_of(weights).is_file():
        return int8_of(weights), "int8"
    if computes == "int8":
        log.warning("%s is missing; %s is served in float", int8_of(weights).name,
                    Path(weights).name)
    return Path(weights).with_suffix(".onnx"), "float"


def pixels(images: NDArray[np.uint8]) -> NDArray[np.float32]:
    """uint8 (N, H, W) or (N, C, H, W) → the export's input, float32 in 0..1, N×C×H×W."""
    batch = images[:, None] if images.ndim == 3 else images
    return batch.astype(np.float32) * np.float32(1 / 255)


def correct(model: bytes, split: datasets.Split) -> NDArray[np.bool_]:
    """Which images of ``split`` the ONNX ``model`` answers right, run as the workers run it."""
    session = onnx_session(model)
    return np.concatenate([
        session.run(None, {ONNX_INPUT: pixels(split.images[start:start + BATCH])})[0]
        .argmax(axis=1) == split.labels[start:start + BATCH]
        for start in range(0, len(split), BATCH)])


def accuracy(model: bytes, split: datasets.Split) -> float:
    """Share of ``split`` the ONNX ``model`` answers right, run as the workers run it."""
    return int(correct(model, split).sum()) / len(split)


def quantize(model: bytes, calibration: NDArray[np.uint8]) -> bytes:
    """The int8 (QDQ) form of the float ONNX ``model``, calibrated on ``calibration``
    (uint8 training images)."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    onnxruntime.set_default_logger_severity(3)  # no notes on the initializers it drops
    graph = onnx.load_from_string(model)
    fold_dense_batch_norm(graph)

    class Images(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter([{ONNX_INPUT: pixels(calibration[i:i + 100])}
                                 for i in range(0, len(calibration), 100)])

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(prefix="nn-int8-") as tmp:
        folded, prepared, quantized = (Path(tmp) / n for n in ("f.onnx", "p.onnx", "q.onnx"))
        onnx.save(graph, str(folded))
        quant_pre_process(str(folded), str(prepared))
        graph = onnx.load(str(prepared))
        for number, node in enumerate(graph.graph.node):  # exclusion goes by name
            node.name = node.name or f"{node.op_type.lower()}_{number}"
        onnx.save(graph, str(prepared))
        quantize_static(
            str(prepared), str(quantized), Images(), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=float_nodes(graph),
        )
        return quantized.read_bytes()


def float_nodes(model: Any) -> list[str]:
    """The nodes that stay float: the first convolution (it reads the image itself, and
    with one input channel an int8 convolution is slower than a float one), the softmax and
    the layer before it (probabilities through uint8 would come in steps of 1/255)."""
    nodes = list(model.graph.node)
    first_conv = [n.name for n in nodes if n.op_type == "Conv"][:1]
    softmax = [n for n in nodes if n.op_type == "Softmax"]
    logits = {n.input[0] for n in softmax}
    return first_conv + [n.name for n in softmax] + [n.name for n in nodes if n.output[0] in logits]


def fold_dense_batch_norm(model: Any) -> None:
    """Fold each BatchNormalization that alone reads a Gemm (x·Wᵀ + b) into the Gemm, in
    place: MXNet exports LeNet's dense layer so, with a bias that is a bare scalar, and
    ONNX Runtime's quantizer wants neither."""
    from onnx import numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    producers = {node.output[0]: node for node in graph.node if node.output}
    for norm in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        gemm = producers.get(norm.input[0])
        attributes = {a.name: a for a in norm.attribute}
        if gemm is None or gemm.op_type != "Gemm" or readers.get(gemm.output[0]) != 1 \
                or any(name not in constants for name in (*norm.input[1:], *gemm.input[1:])) \
                or {a.name: (a.i if a.type == a.INT else a.f) for a in gemm.attribute} \
                not in ({"transB": 1}, {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1}):
            continue
        gamma, beta, mean, var = (numpy_helper.to_array(constants[n]).astype(np.float64)
                                  for n in norm.input[1:5])
        epsilon = attributes["epsilon"].f if "epsilon" in attributes else 1e-5
        weight = numpy_helper.to_array(constants[gemm.input[1]]).astype(np.float64)
        bias = (numpy_helper.to_array(constants[gemm.input[2]]).astype(np.float64)
                if len(gemm.input) > 2 else np.zeros(weight.shape[0]))
        scale = gamma / np.sqrt(var + epsilon)
        folded_w = (weight * scale[:, None]).astype(np.float32)
        folded_b = ((np.broadcast_to(bias, scale.shape) - mean) * scale + beta) \
            .astype(np.float32)
        names = (f"{gemm.output[0]}_folded_weight", f"{gemm.output[0]}_folded_bias")
        graph.initializer.extend([numpy_helper.from_array(folded_w, names[0]),
                                  numpy_helper.from_array(folded_b, names[1])])
        del gemm.input[1:]
        gemm.input.extend(names)
        gemm.output[0] = norm.output[0]
        graph.node.remove(norm)


def measure(cls: type[Network], weights: Path, test: datasets.Split,
            train: datasets.Split) -> Measurement:
    """Score the float export beside ``weights`` and its int8 form on ``test``; the int8
    model is written beside them (``int8_of``) when it is the one to serve. ``train``: the
    whole training set, so that a version's int8 model depends on the version alone."""
    model = Path(weights).with_suffix(".onnx").read_bytes()
    float_accuracy = accuracy(model, test)
    accuracies = {"float": f"{float_accuracy * 100:.2f}"}
    rng = np.random.default_rng(CALIBRATION_SEED)
    chosen = np.sort(rng.choice(len(train), min(CALIBRATION_IMAGES, len(train)),
                                replace=False))
    try:
        int8_model = quantize(model, train.images[chosen])
    except Exception as exc:  # a graph the quantizer does not take: float it is
        log.warning("%s: no int8 form (%s: %s); served in float", cls.title,
                    type(exc).__name__, exc)
        return Measurement(accuracies, "float")
    int8_accuracy = accuracy(int8_model, test)
    accuracies["int8"] = f"{int8_accuracy * 100:.2f}"
    precision = choose(float_accuracy, int8_accuracy)
    int8_of(weights).unlink(missing_ok=True)
    if precision == "int8":
        write_atomic(int8_of(weights), int8_model)
    return Measurement(accuracies, precision)


def measure_saved(cls: type[Network], weights: Path, data_dir: Path | None,
                  allow_download: bool = True) -> VersionRecord:
    """Measure saved weights (exporting them first where they have no ONNX export) and
    write the figures into their record; the record."""
    if not Path(weights).with_suffix(".onnx").is_file():
        from nn_server.networks.export import export_onnx  # MXNet: only when needed

        export_onnx(cls, weights, Path(weights).with_suffix(".onnx"))
    test = datasets.load_split(cls.dataset, "test", data_dir, allow_download=allow_download)
    train = datasets.load_split(cls.dataset, "train", data_dir,
                                allow_download=allow_download)
    record = VersionRecord.read(weights)
    measurement = measure(cls, weights, test, train)
    record = record.measured(measurement.accuracies, measurement.precision)
    record.write(weights)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nn_server.networks.precision",
        description="Score saved weights in float and int8 on the test set; write the int8 "
                    "model beside them where it is served and the figures into their record.")
    parser.add_argument("--network", default="lenet")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the data sets are (default: NN_DATA_DIR, else ./data)")
    parser.add_argument("--no-download", action="store_true",
                        help="fail instead of downloading a missing data set")
    parser.add_argument("weights", type=Path)
    args = parser.parse_args(argv)
    load_registry()
    try:
        cls = network_class(args.network)
        record = measure_saved(cls, args.weights, args.data_dir,
                               allow_download=not args.no_download)
    except (KeyError, OSError, ValueError) as exc:
        print(f"precision: {exc}", file=sys.stderr)
        return 1
    print(f"{cls.title} {args.weights.name}: {record.accuracies} → {record.precision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
