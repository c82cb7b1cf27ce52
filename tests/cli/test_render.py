"""The render layer: objects in, Rich renderables out, readable with and without colour."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from cli_harness import SAMPLES
from PIL import Image
from rich.console import Console, RenderableType

from nn_cli import render
from nn_cli.act import ClassifiedImage
from nn_sdk import (
    Classification,
    NetworkInfo,
    NetworkSummary,
    TrainingProgress,
    TrainingStarted,
    TrainingStatus,
)


def text(renderable: RenderableType, *, color: bool = False) -> str:
    out = io.StringIO()
    Console(file=out, width=100, color_system="truecolor" if color else None,
            force_terminal=color).print(renderable)
    return out.getvalue()


def png(width: int, height: int, mode: str = "L", color: object = 255) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, format="PNG")  # type: ignore[arg-type]
    return buffer.getvalue()


def test_preview_without_colour_is_ascii_art() -> None:
    image = Image.new("L", (40, 40), 255)
    image.paste(0, (10, 0, 30, 40))  # a black bar down the middle
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    lines = render.render_preview(buffer.getvalue(), width=20, color=False).plain.split("\n")
    assert len(lines) == 10 and all(len(line) == 20 for line in lines)  # cells are 2:1
    assert all(line == " " * 5 + "@" * 10 + " " * 5 for line in lines)


def test_preview_in_colour_uses_half_blocks() -> None:
    preview = render.render_preview(png(28, 28, "RGB", (255, 0, 0)), color=True)
    lines = preview.plain.split("\n")
    assert len(lines) == 14 and set("".join(lines)) == {"▀"}
    assert "#ff0000" in str(preview.spans[0].style)


def test_preview_of_odd_modes_and_garbage() -> None:
    for path in SAMPLES:  # 16-bit, palette, LA, RGBA, EXIF-rotated, ...
        assert render.render_preview(path.read_bytes(), color=False).plain.strip()
    assert render.render_preview(b"not an image", color=True).plain == "(no preview)"


def test_classification_shows_preview_answer_and_probabilities() -> None:
    probabilities = tuple(0.91 if i == 4 else 0.01 for i in range(10))
    item = ClassifiedImage(Path("images/4_x.png"), png(28, 28),
                               Classification("4", 4, 0.91, probabilities, "abc"),
                               labels=tuple("0123456789"))
    plain = text(render.render_classification(item, color=False))
    assert "Answer: 4   (confidence 91.0%)" in plain
    assert "4 " + "#" * 18 in plain and " 91.0%" in plain and "█" not in plain


def test_status_table() -> None:
    status = TrainingStatus(99.5, dt.datetime(2026, 1, 2, 3, 4, 5), "training",
                            TrainingProgress(0.5, epoch=1, epochs=2, loss=0.1234, eta_s=12),
                            weights_version="abc123")
    plain = text(render.render_status(status, "lenet"))
    for expected in ("network   lenet", "state     training", "accuracy  99.50 %",
                     "trained   2026-01-02 03:04:05", "weights   abc123",
                     "progress  50%  epoch 1/2  loss 0.123  12 s left"):
        assert expected in plain
    failed = TrainingStatus(None, None, "failed", error="out of memory")
    assert "error     out of memory" in text(render.render_status(failed))
    assert "failed: out of memory" in text(render.render_training_result(failed, "lenet"))


def test_other_results() -> None:
    networks = (NetworkSummary("lenet", "LeNet", "/lenet"),)
    assert "lenet" in text(render.render(networks, color=False))
    about = NetworkInfo("lenet", "LeNet", "Reads digits.", tuple("01"))
    assert "Reads digits." in text(render.render(about, color=False))
    started = TrainingStarted("lenet", "Training of LeNet started.")
    assert "Training of LeNet started." in text(render.render(started, color=False))
