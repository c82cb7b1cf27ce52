"""``cli.py host:port lenet versions|serve|export`` and what a finished training says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import onnx
from cli_harness import address, run_cli
from rich.console import Console

from nn_cli.render import render_training_result
from nn_sdk import TrainingStatus

VERSION = re.compile(r"\b[0-9a-f]{12}\b")


def test_versions_serve_and_export(lifecycle_server: Any, tmp_path: Path) -> None:
    where = address(lifecycle_server)
    listed = run_cli(where, "lenet", "versions")
    assert listed.code == 0, listed.err
    [marked] = [line for line in listed.out.splitlines() if "▶" in line]
    [served] = VERSION.findall(marked)
    assert "served" in marked
    # The shipped weights' accuracy in both precisions, and the one the workers run.
    assert re.search(r"\d+\.\d\d % float, \d+\.\d\d % int8 +│ int8", marked), marked

    result = run_cli(where, "lenet", "serve", served)
    assert result.code == 0 and f"now serves {served}" in result.out, result.out

    out = tmp_path / "model.onnx"
    result = run_cli(where, "lenet", "export", served, str(out))
    assert result.code == 0, result.err
    assert "saved as ONNX" in result.out and onnx.load(str(out)).graph.input[0].name == "image"

    missing = run_cli(where, "lenet", "serve", "0123456789ab")
    assert missing.code == 1 and "no version" in missing.err
    usage = run_cli(where, "lenet", "export", served)
    assert usage.code == 1 and "a version and a file name" in usage.err


def render(status: TrainingStatus) -> str:
    console = Console(width=120, color_system=None)
    with console.capture() as captured:
        console.print(render_training_result(status, "lenet"))
    return captured.get()


def test_after_training_it_says_whether_the_result_is_served() -> None:
    kept = TrainingStatus(accuracy=53.6, datetime=None, version="0123456789ab",
                          promoted=False, reason="53.60 % < 99.57 % of the served weights")
    text = render(kept)
    assert "NOT served" in text and "53.60 % < 99.57 %" in text
    assert "lenet serve 0123456789ab" in text
    served = TrainingStatus(accuracy=99.6, datetime=None, version="abcdef012345",
                            promoted=True)
    assert "Now serving version abcdef012345" in render(served)
