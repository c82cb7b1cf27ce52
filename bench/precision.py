"""``python -m bench precision``: each network's shipped weights in float and int8, as the
server serves them: accuracy on the whole test set and the forward pass per image (ONNX
Runtime, one thread, batch 1 and 16), with the verdict of the 0.1-point rule.

    python -m bench precision [--seconds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from nn_server.networks import datasets, load_registry
from nn_server.networks.base import ONNX_INPUT, onnx_session
from nn_server.networks.precision import accuracy, choose, int8_of, pixels

BATCHES = (1, 16)


def forward_us(session: Any, images: NDArray[np.uint8], batch: int, seconds: float) -> float:
    """Microseconds per image of ``session`` at ``batch``, over about ``seconds``."""
    feed = {ONNX_INPUT: pixels(images[:batch])}
    session.run(None, feed)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, feed)
        calls += 1
    return (time.perf_counter() - start) / calls / batch * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench precision", description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="per timing")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    table = Table(title="Shipped weights in float and int8 (ONNX Runtime, one thread)")
    for column in ("network", "precision", "accuracy", *(f"µs/img b={b}" for b in BATCHES),
                   "served"):
        table.add_column(column, justify="left" if column in ("network", "precision")
                         else "right")
    figures: dict[str, Any] = {}
    for name, cls in load_registry().items():
        weights = cls.shipped_weights()
        test = datasets.load_split(cls.dataset, "test", allow_download=False)
        models = {"float": weights.with_suffix(".onnx").read_bytes()}
        if int8_of(weights).is_file():
            models["int8"] = int8_of(weights).read_bytes()
        scores = {p: accuracy(m, test) for p, m in models.items()}
        served = choose(scores["float"], scores["int8"]) if "int8" in scores else "float"
        figures[name] = {"served": served}
        for precision, model in models.items():
            session = onnx_session(model)
            speed = {b: forward_us(session, test.images, b, args.seconds) for b in BATCHES}
            figures[name][precision] = {"accuracy": scores[precision],
                                        "us_per_image": speed}
            table.add_row(cls.title, precision, f"{scores[precision] * 100:.2f} %",
                          *(f"{speed[b]:.1f}" for b in BATCHES),
                          "◀" if precision == served else "")
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        Console().print(table)
    return 0
