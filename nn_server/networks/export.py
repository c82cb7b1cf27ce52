"""ONNX export of a network's weights, with MXNet's own exporter (``mxnet.onnx``).

The exported graph takes what ``Network.preprocess`` produces, as float32 in 0..1 —
``image``: N×C×H×W — and answers ``probabilities``: N×classes. The network's normalisation
and the softmax are inside the graph, so any ONNX runtime reproduces the server's answers
from the preprocessed pixels alone.

    python -m nn_server.networks.export --network lenet WEIGHTS.params OUT.onnx

Every training writes ``<network>.onnx`` beside its weights; the server exports older
versions on demand through this command, in a process of its own (MXNet is large, and its
graphs are not for a server worker's threads).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nn_server.core.files import write_atomic
from nn_server.networks import Network, load_registry, network_class
from nn_server.networks.base import ONNX_INPUT

if TYPE_CHECKING:
    from mxnet.gluon import HybridBlock

INPUT = ONNX_INPUT
OUTPUT = "probabilities"
EXPORT_TIMEOUT_S = 300.0


class ExportError(RuntimeError):
    """The export process failed; the message has the end of what it said."""


async def export_in_process(cls: type[Network], weights: Path, target: Path) -> None:
    """Export ``weights`` to ``target`` with ``python -m nn_server.networks.export`` in a process of
    its own: MXNet (large, and not for a server worker's threads) stays out of the caller."""
    import asyncio

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nn_server.networks.export", "--network", cls.name, str(weights),
        str(target), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), EXPORT_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ExportError(f"exporting {weights.name} took over {EXPORT_TIMEOUT_S:.0f} s") \
            from None
    if process.returncode != 0 or not target.is_file():
        raise ExportError(f"exporting {weights.name} failed: "
                          f"{stderr.decode(errors='replace')[-2000:]}")


def servable(cls: type[Network], block: HybridBlock) -> HybridBlock:
    """``block`` with the network's normalisation before it and a softmax after it."""
    from mxnet.gluon import nn

    mean, std = cls.mean, cls.std

    class Served(nn.HybridBlock):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(prefix="served_")
            with self.name_scope():
                self.inner = block

        def hybrid_forward(self, F: Any, x: Any) -> Any:
            return F.softmax(self.inner((x - mean) / std))

    return Served()


def export_onnx(cls: type[Network], weights: Path, out: Path) -> Path:
    """Write the ONNX model of ``cls`` with ``weights`` to ``out`` (atomically)."""
    import mxnet as mx
    import onnx

    block = cls.build()
    block.load_parameters(str(weights), ctx=mx.cpu())
    served = servable(cls, block)
    served.hybridize()
    served(mx.nd.zeros((1, *cls.input_shape)))  # builds the graph that export() writes
    with tempfile.TemporaryDirectory(prefix="nn-export-") as tmp:
        prefix = str(Path(tmp) / cls.name)
        served.export(prefix)
        onnx_path = mx.onnx.export_model(
            f"{prefix}-symbol.json", f"{prefix}-0000.params", [(1, *cls.input_shape)],
            np.float32, str(Path(tmp) / "model.onnx"), dynamic=True,
            dynamic_input_shapes=[(None, *cls.input_shape)],
        )
        model = onnx.load(onnx_path)
    tidy(model)
    onnx.checker.check_model(model)
    write_atomic(out, model.SerializeToString())
    return out


def tidy(model: Any) -> None:
    """Name the input and output for what they are, take the weights out of the graph's
    inputs (MXNet's exporter lists them there, which keeps ONNX Runtime from folding them
    as constants) and drop the constants nothing uses."""
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    initializers = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    constants = {init.name for init in initializers}
    inputs = [i for i in graph.input if i.name not in constants and i.name in used]
    del graph.input[:]
    graph.input.extend(inputs)
    renames = {inputs[0].name: INPUT, graph.output[0].name: OUTPUT}
    for value in (*graph.input, *graph.output):
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    model.doc_string = "nn-server: image (N×C×H×W float32 in 0..1) → probabilities"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nn_server.networks.export",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="lenet", choices=sorted(load_registry()))
    parser.add_argument("weights", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if not args.weights.is_file():
        print(f"error: weights file {args.weights} not found", file=sys.stderr)
        return 1
    export_onnx(network_class(args.network), args.weights, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
