"""int8 only where it is measured as good (``nn_server.networks.precision``): the rule, the
folding that prepares LeNet's graph for ONNX Runtime's quantizer, the measurement on real
weights and data, and what the workers load for what a record says."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from nn_server.core.records import Precision, VersionRecord
from nn_server.engine.serving import load
from nn_server.networks import datasets
from nn_server.networks.base import ONNX_INPUT, onnx_session
from nn_server.networks.lenet import LeNet
from nn_server.networks.precision import (
    choose,
    correct,
    fold_dense_batch_norm,
    int8_of,
    measure,
    pixels,
    served_precision,
)

SHIPPED = LeNet.shipped_weights()


@pytest.fixture(scope="module")
def mnist() -> tuple[datasets.Split, datasets.Split]:
    # tests/conftest.py has made sure MNIST is there and set NN_DATA_DIR.
    return (datasets.load_split(LeNet.dataset, "test", allow_download=False),
            datasets.load_split(LeNet.dataset, "train", allow_download=False))


@pytest.mark.parametrize(("float_accuracy", "int8_accuracy", "served"), [
    (0.9955, 0.9954, "int8"), (0.9955, 0.9945, "int8"), (0.9955, 0.9944, "float"),
    (0.2576, 0.2617, "int8"), (0.9955, 0.90, "float"),
])
def test_int8_is_served_only_within_a_tenth_of_a_point(float_accuracy: float,
                                                       int8_accuracy: float,
                                                       served: str) -> None:
    assert choose(float_accuracy, int8_accuracy) == served


def test_folding_the_dense_batch_norm_keeps_the_answers(mnist) -> None:
    test, _ = mnist
    model = onnx.load(str(SHIPPED.with_suffix(".onnx")))

    def after_dense() -> int:
        dense = {n.output[0] for n in model.graph.node if n.op_type == "Gemm"}
        return sum(n.op_type == "BatchNormalization" and n.input[0] in dense
                   for n in model.graph.node)

    assert after_dense() == 1
    fold_dense_batch_norm(model)
    assert after_dense() == 0
    onnx.checker.check_model(model)
    batch = {ONNX_INPUT: pixels(test.images[:500])}
    exported = onnx_session(SHIPPED.with_suffix(".onnx").read_bytes()).run(None, batch)[0]
    folded = onnx_session(model.SerializeToString()).run(None, batch)[0]
    assert np.abs(exported - folded).max() < 1e-5


def test_measuring_real_weights_writes_the_int8_model_it_scored(mnist, tmp_path: Path) -> None:
    test, train = mnist
    weights = tmp_path / "lenet.params"
    for suffix in (".params", ".json", ".onnx"):
        shutil.copyfile(SHIPPED.with_suffix(suffix), weights.with_suffix(suffix))
    part = test.first(2000)
    measured = measure(LeNet, weights, part, train)
    assert measured.accuracies.keys() == {"float", "int8"}
    assert float(measured.accuracies["float"]) >= 99.0
    assert measured.precision == choose(float(measured.accuracies["float"]) / 100,
                                        float(measured.accuracies["int8"]) / 100) == "int8"
    model = int8_of(weights).read_bytes()
    ops = {n.op_type for n in onnx.load_from_string(model).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    answers = onnx_session(model).run(None, {ONNX_INPUT: pixels(part.images)})[0].argmax(1)
    right = (answers == part.labels).mean()
    assert f"{right * 100:.2f}" == measured.accuracies["int8"]
    again = measure(LeNet, weights, part, train)  # the same version, the same int8 model
    assert again == measured and int8_of(weights).read_bytes() == model


def test_the_record_says_what_the_workers_run() -> None:
    int8 = VersionRecord(precision="int8")
    assert served_precision(int8, "onnx", "int8") == "int8"
    assert served_precision(int8, "onnx", "float") == "float"  # NN_PRECISION=float
    assert served_precision(int8, "mxnet", "int8") == "float"
    assert served_precision(VersionRecord(precision="float"), "onnx", "int8") == "float"
    assert served_precision(VersionRecord(), "onnx", "int8") == "float"  # never measured
    odd = VersionRecord.from_json({"precision": "int4", "accuracies": {"float": "99.00"}})
    assert (odd.precision, odd.accuracies) == (None, {"float": "99.00"})


def test_workers_fall_back_to_float_when_the_int8_model_is_missing(tmp_path: Path) -> None:
    weights = tmp_path / "lenet.params"
    for suffix in (".params", ".json", ".onnx", ".int8.onnx"):
        shutil.copyfile(SHIPPED.with_suffix(suffix), weights.with_suffix(suffix))
    assert load(LeNet, weights, "onnx", "int8").precision == "int8"
    int8_of(weights).unlink()
    assert load(LeNet, weights, "onnx", "int8").precision == "float"


def test_int8_answers_do_not_depend_on_the_batch(mnist) -> None:
    test, _ = mnist
    session = onnx_session(SHIPPED.with_suffix(".int8.onnx").read_bytes())
    batch = pixels(test.images[:64])
    together = session.run(None, {ONNX_INPUT: batch})[0]
    alone = np.concatenate([session.run(None, {ONNX_INPUT: batch[i:i + 1]})[0]
                            for i in range(len(batch))])
    assert (together.argmax(1) == alone.argmax(1)).all()
    assert np.abs(together - alone).max() < 1e-5


def test_promotion_compares_the_weights_as_they_would_be_served(
        tmp_path: Path, mnist: tuple[datasets.Split, datasets.Split]) -> None:
    """Float says "as good", int8 says "worse": new weights the workers would run in int8
    must not replace served weights they run in float that read one more test image
    right. The same weights on both sides, told apart only by their records' precision,
    on the first test images where the shipped int8 model falls one behind its float."""
    from nn_server.store.local import LocalStore
    from nn_server.training.command import TrainerCommand
    from nn_server.training.run import TrainingJob
    from nn_server.training.trainer import judge

    test, _ = mnist
    float_right = correct(SHIPPED.with_suffix(".onnx").read_bytes(), test)
    int8_right = correct(int8_of(SHIPPED).read_bytes(), test)
    behind = np.flatnonzero(np.cumsum(int8_right) < np.cumsum(float_right))
    assert behind.size, "the shipped int8 model reads every prefix of the test set as float"
    first = int(behind[0]) + 1

    def copy(name: str, precision: Precision) -> Path:
        weights = tmp_path / name / SHIPPED.name
        weights.parent.mkdir()
        for source in (SHIPPED, SHIPPED.with_suffix(".onnx"), int8_of(SHIPPED)):
            shutil.copy(source, weights.parent / source.name)
        record = VersionRecord.read(SHIPPED)
        record.measured(record.accuracies or {}, precision).write(weights)
        return weights

    store = LocalStore(tmp_path / "state", "lenet", keep=3)
    store.serve(store.add(copy("served", "float"), source="shipped"))
    new = copy("new", "int8")
    job = TrainingJob(network="lenet", out_dir=tmp_path / "work", data_dir=datasets.data_dir(),
                      test_subset=first)
    command = TrainerCommand(network="lenet", state_dir=tmp_path / "state", lease="-")

    record, promoted, reason = judge(job, VersionRecord.read(new), new, store, command)
    assert not promoted
    assert reason is not None and "% (int8) < " in reason, reason
    assert reason.endswith("% (float) of the served weights"), reason
    assert record.served_accuracy == pytest.approx(float_right[:first].mean())
    # Where the workers compute in float (NN_PRECISION=float), the two read alike.
    float_command = TrainerCommand(network="lenet", state_dir=tmp_path / "state", lease="-",
                                   precision="float")
    assert judge(job, VersionRecord.read(new), new, store, float_command)[1:] == (True, None)
