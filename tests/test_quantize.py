"""int8 LeNet (``nn_server.networks.quantize``): as accurate as float on MNIST's test set, answers
that do not depend on the batch, and float wherever the graph is not a plain chain."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from nn_server.engine.serving import load
from nn_server.networks import datasets, load_registry, quantize
from nn_server.networks.fashion import Fashion
from nn_server.networks.lenet import MNIST, LeNet

REGISTRY = load_registry()


def session(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def probabilities(model: bytes, images: np.ndarray) -> np.ndarray:
    s = session(model)
    pixels = images.astype(np.float32)[:, None] / 255
    return np.concatenate([s.run(None, {"image": pixels[i : i + 500]})[0]
                           for i in range(0, len(pixels), 500)])


@pytest.fixture(scope="module")
def exported() -> bytes:
    return LeNet.shipped_weights().with_suffix(".onnx").read_bytes()


@pytest.fixture(scope="module")
def mnist() -> datasets.Split:
    return datasets.load_split(MNIST, "test")


def test_folding_keeps_the_exports_answers(exported: bytes, mnist: datasets.Split) -> None:
    images = mnist.images[:500]
    folded = probabilities(quantize.quantize(exported, int8=False), images)
    assert np.abs(folded - probabilities(exported, images)).max() < 1e-5


def test_int8_is_as_accurate_as_float_on_the_whole_test_set(exported: bytes,
                                                           mnist: datasets.Split) -> None:
    reference = probabilities(exported, mnist.images)
    int8 = probabilities(quantize.quantize(exported), mnist.images)
    float_accuracy = (reference.argmax(1) == mnist.labels).mean()
    int8_accuracy = (int8.argmax(1) == mnist.labels).mean()
    print(f"\nMNIST test set: float {float_accuracy:.2%}, int8 {int8_accuracy:.2%}")
    assert int8_accuracy >= 0.995 and int8_accuracy >= float_accuracy - 0.0005
    assert (int8.argmax(1) == reference.argmax(1)).mean() >= 0.999  # 9,998 of 10,000
    assert np.abs(int8 - reference).max() < 0.1


def test_the_int8_graph_is_int8(exported: bytes) -> None:
    model = onnx.load_from_string(quantize.quantize(exported))
    int8 = [t for t in model.graph.initializer
            if t.data_type == onnx.TensorProto.INT8 and t.name.startswith("weight")]
    assert len(int8) == 3  # conv2 and both dense layers; conv1 stays float
    assert [n.op_type for n in model.graph.node].count("QuantizeLinear") >= 4


def test_answers_do_not_depend_on_the_batch(mnist: datasets.Split) -> None:
    net = load(LeNet, LeNet.shipped_weights(), "onnx", "int8")
    assert net.precision == "int8"
    batch = np.stack([mnist.images[i][None] for i in range(64)])
    together = net.infer(batch)
    alone = np.concatenate([net.infer(batch[i : i + 1]) for i in range(64)])
    assert np.array_equal(together, alone)


def test_float_precision_serves_the_export(mnist: datasets.Split, exported: bytes) -> None:
    net = load(LeNet, LeNet.shipped_weights(), "onnx", "float")
    assert net.precision == "float"
    images = mnist.images[:100]
    served = net.infer(images[:, None])
    assert np.abs(served - probabilities(exported, images)).max() < 1e-6


def test_a_network_whose_graph_is_not_a_chain_is_served_in_float() -> None:
    with pytest.raises(quantize.NotQuantizable, match="Add"):
        quantize.quantize(Fashion.shipped_weights().with_suffix(".onnx").read_bytes())
    assert not Fashion.int8 and [c.name for c in REGISTRY.values() if c.int8] == ["lenet"]
    assert load(Fashion, Fashion.shipped_weights(), "onnx", "int8").precision == "float"


def test_what_is_not_a_plain_chain_is_refused(exported: bytes) -> None:
    model = onnx.load_from_string(exported)
    model.graph.node.insert(3, helper.make_node("Sigmoid", ["nowhere"], ["else"]))
    with pytest.raises(quantize.NotQuantizable, match="single chain"):
        quantize.quantize(model.SerializeToString())
    model = onnx.load_from_string(exported)
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.op_type = "Elu"
    with pytest.raises(quantize.NotQuantizable, match="Elu"):
        quantize.quantize(model.SerializeToString())
