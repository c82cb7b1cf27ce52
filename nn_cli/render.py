"""Rendering: result objects → Rich renderables. Nothing here prints or talks to a server;
``color`` says whether the console shows colours (a pipe gets ASCII shading instead)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps
from rich.color import Color
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from nn_cli.act import ClassifiedImage, Exported, Outcome, Served
from nn_cli.parse import Command
from nn_sdk import (
    AuthenticationError,
    Classification,
    NetworkInfo,
    NetworkSummary,
    TrainingStarted,
    TrainingStatus,
    Version,
    Versions,
)

PREVIEW_WIDTH = 28


def render(outcome: Outcome, *, color: bool) -> RenderableType:
    """The renderable for any result of ``act``."""
    if isinstance(outcome, tuple):
        return render_networks(outcome)
    if isinstance(outcome, NetworkInfo):
        return render_about(outcome)
    if isinstance(outcome, TrainingStarted):
        return render_training_started(outcome)
    if isinstance(outcome, TrainingStatus):
        return render_status(outcome)
    if isinstance(outcome, Versions):
        return render_versions(outcome)
    if isinstance(outcome, Served):
        return Text.assemble(f"{outcome.network} now serves ",
                             (outcome.version, "bold green"), " (every worker within a second)")
    if isinstance(outcome, Exported):
        return Text(f"{outcome.network} version {outcome.version} saved as ONNX: "
                    f"{display(outcome.path)} ({outcome.size:,} bytes)")
    return render_classification(outcome, color=color)


def render_versions(versions: Versions) -> RenderableType:
    """The versions, newest first, the served one marked."""
    table = Table(title=f"Versions of {versions.network}", title_justify="left")
    for column in ("#", "", "version", "accuracy", "runs", "trained", "epochs", "source",
                   "note"):
        # Only the note may wrap: a long reason must not break the figures or the dates.
        table.add_column(column, justify="right" if column in ("#", "epochs") else "left",
                         no_wrap=column != "note")
    for number, v in enumerate(versions.versions, 1):
        note = "served" if v.served else "rollback" if v.version == versions.previous else ""
        if not v.promoted:
            note = f"not promoted: {v.reason}" if v.reason else "not promoted"
        table.add_row(
            str(number), Text("▶", style="bold green") if v.served else "",
            Text(v.version, style="bold green" if v.served else ""),
            accuracies(v), v.precision,
            "—" if v.datetime is None else f"{v.datetime:%Y-%m-%d %H:%M}",
            "—" if v.epochs is None else str(v.epochs), v.source or "", note,
        )
    return table


def accuracies(v: Version) -> str:
    """``99.55 % float, 99.54 % int8``: each precision measured (the training's one figure
    for a version never measured)."""
    if v.accuracies:
        return ", ".join(f"{a:.2f} % {p}" for p, a in v.accuracies.items())
    return "—" if v.accuracy is None else f"{v.accuracy:.2f} %"


def render_networks(networks: Sequence[NetworkSummary]) -> RenderableType:
    table = Table(title="Networks", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("name", style="bold cyan")
    table.add_column("title")
    table.add_column("url")
    for number, network in enumerate(networks, 1):
        table.add_row(str(number), network.name, network.title, network.url)
    return table


def render_about(info: NetworkInfo) -> RenderableType:
    body: list[RenderableType] = [Text(info.description)]
    if info.labels:
        body.append(Text(f"\nlabels: {' '.join(info.labels)}", style="dim"))
    return Panel(Group(*body), title=f"{info.title} ({info.name})", title_align="left",
                 expand=False)


def render_training_started(started: TrainingStarted) -> RenderableType:
    return Text.assemble((started.message, "bold green"), f"  ({started.network}: {started.state})")


def render_status(status: TrainingStatus, network: str | None = None) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    if network:
        grid.add_row("network", network)
    state_style = {"idle": "green", "training": "yellow", "failed": "red"}.get(status.state, "")
    grid.add_row("state", Text(status.state, style=state_style))
    grid.add_row("accuracy", "—" if status.accuracy is None else f"{status.accuracy:.2f} %")
    trained = "—" if status.datetime is None else f"{status.datetime:%Y-%m-%d %H:%M:%S}"
    grid.add_row("trained", trained)
    if status.weights_version:
        grid.add_row("weights", status.weights_version)
    if status.progress is not None and status.is_training:
        grid.add_row("progress", f"{status.progress.fraction:.0%}  {progress_detail(status)}")
    if status.error:
        grid.add_row("error", Text(status.error, style="red"))
    return grid


def progress_detail(status: TrainingStatus) -> str:
    """One line about a running training: epoch, batch, loss, accuracy, time left."""
    p = status.progress
    if p is None:
        return "starting…" if status.is_training else status.state
    parts = []
    if p.epoch is not None and p.epochs is not None:
        parts.append(f"epoch {p.epoch}/{p.epochs}")
    if p.batch is not None and p.batches is not None:
        parts.append(f"batch {p.batch}/{p.batches}")
    if p.loss is not None:
        parts.append(f"loss {p.loss:.3f}")
    if p.accuracy is not None:
        parts.append(f"acc {p.accuracy:.1%}")
    if p.eta_s is not None:
        parts.append(f"{p.eta_s:.0f} s left")
    return "  ".join(parts)


def render_preview(data: bytes, *, width: int = PREVIEW_WIDTH, color: bool = True) -> Text:
    """The image in ``width`` terminal cells: two pixels per cell with half blocks in
    colour, or an ASCII density ramp without colour (so it survives a pipe)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = _displayable(opened)
    except Exception:  # any file Pillow cannot show just gets no preview
        return Text("(no preview)", style="dim")
    # A terminal cell is about twice as tall as wide: one cell row covers two pixel rows.
    rows = max(1, round(width * image.height / image.width / 2))
    if color:
        pixels = image.resize((width, rows * 2))
        text = Text()
        for y in range(0, pixels.height - 1, 2):
            for x in range(width):
                top = pixels.getpixel((x, y))
                bottom = pixels.getpixel((x, y + 1))
                assert isinstance(top, tuple) and isinstance(bottom, tuple)
                text.append("▀", Style(color=Color.from_rgb(*top[:3]),
                                       bgcolor=Color.from_rgb(*bottom[:3])))
            text.append("\n")
        text.rstrip()
        return text
    ramp = " .:-=+*#%@"  # light paper → dark ink
    gray = image.convert("L").resize((width, rows))
    lines = []
    for y in range(rows):
        line = ""
        for x in range(width):
            value = gray.getpixel((x, y))
            assert isinstance(value, (int, float))
            line += ramp[min(len(ramp) - 1, int((255 - value) * len(ramp) / 256))]
        lines.append(line)
    return Text("\n".join(lines))


def _displayable(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit gray: scale to 8 bits
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        background = Image.new("RGBA", image.size, "white")
        background.alpha_composite(image.convert("RGBA"))
        image = background
    return image.convert("RGB")


def render_classification(item: ClassifiedImage, *, color: bool) -> RenderableType:
    """Preview beside the answer and every label's probability."""
    result = item.result
    answer = Table.grid(padding=(0, 1))
    answer.add_column()
    answer.add_row(Text(display(item.path), style="dim"))
    line = Text.assemble("Answer: ", (result.label, "bold green"))
    if result.confidence is not None:
        line.append(f"   (confidence {result.confidence:.1%})")
    answer.add_row(line)
    if result.probabilities:
        answer.add_row(render_probabilities(result, item.labels, color=color))
    grid = Table.grid(padding=(0, 3))
    grid.add_column(vertical="middle")
    grid.add_column()
    grid.add_row(render_preview(item.data, color=color), answer)
    return grid


def render_probabilities(
    result: Classification, labels: Sequence[str], *, color: bool, width: int = 20
) -> RenderableType:
    names = list(labels) if len(labels) == len(result.probabilities) else [
        str(i) for i in range(len(result.probabilities))
    ]
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right")
    table.add_column()
    table.add_column(justify="right")
    block = "█" if color else "#"
    for name, p in zip(names, result.probabilities, strict=True):
        style = "bold green" if name == result.label else "cyan"
        table.add_row(name, Text(block * round(p * width), style=style), f"{p:6.1%}")
    return table


def render_error(error: Exception, command: Command | None = None) -> Text:
    """One line for stderr."""
    message = str(error)
    if isinstance(error, AuthenticationError) and command is not None:
        message = (
            f"authentication failed for user {command.user!r} at {command.base_url}: {message}"
        )
    return Text(f"error: {message}")



def render_training_result(status: TrainingStatus, network: str) -> RenderableType:
    if status.state == "failed":
        return Text(f"Training of {network} failed: {status.error or 'no reason given'}",
                    style="bold red")
    if status.promoted is False:
        return Group(
            Text(f"Training of {network} finished, but its result is NOT served: "
                 f"{status.reason or 'it was less accurate than the served weights'}.",
                 style="bold yellow"),
            Text(f"It is kept as version {status.version}; serve it anyway with "
                 f"`{network} serve {status.version}`.", style="yellow"),
            render_status(status, network),
        )
    served = f" Now serving version {status.version}." if status.version else ""
    return Group(Text(f"Training of {network} finished.{served}", style="bold green"),
                 render_status(status, network))


def render_training_followed(network: str) -> RenderableType:
    """What the menu says when Ctrl-C stops it following a training."""
    return Text(f"Stopped following; the training of {network} goes on on the server "
                "(status shows how far it is).", style="yellow")


def render_images(directory: Path, images: Sequence[Path]) -> RenderableType:
    """The picker's numbered list of ``directory``'s images."""
    if not images:
        return Text(f"No images in {display(directory)}.", style="yellow")
    return Group(
        Text(f"Images in {display(directory)}:", style="bold"),
        Columns(
            [Text.assemble((f"{number:>3} ", "bold cyan"), path.name)
             for number, path in enumerate(images, 1)],
            column_first=True, padding=(0, 3),
        ),
    )


def display(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
