"""nn-server's terminal client: an interactive Rich menu, or the seed's argument mode.

    python cli.py                                    menu; server: this machine's LAN address:5000
    python cli.py [host:port]                        menu, that server
    python cli.py [host:port] list_nn                the server's networks
    python cli.py [host:port] lenet classify [FILE]  classify FILE (no FILE: pick one of images/)
    python cli.py [host:port] lenet status|about|train|versions
    python cli.py [host:port] lenet serve VERSION             serve that version (rollback)
    python cli.py [host:port] lenet export VERSION FILE.onnx  save that version as ONNX

Credentials: --user/--password, or NN_USER/NN_PASSWORD (default test_nn/lenet).
HTTPS: --https (system CAs), --cafile ssl/cert.pem (trust that certificate), --insecure.

The module has three layers: ``parse`` turns argv into a ``Command``; ``act`` performs
it with ``nn_sdk`` and returns result objects (it never prints); ``render_*`` turns those
into Rich renderables. ``Menu`` strings them together interactively; ``main`` prints,
turns ``NNError`` into one line on stderr and returns the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image, ImageOps
from rich.color import Color
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.style import Style
from rich.table import Table
from rich.text import Text

from nn_sdk import (
    DEFAULT_PASSWORD,
    DEFAULT_PORT,
    DEFAULT_USER,
    SUPPORTED_FORMATS,
    AuthenticationError,
    Classification,
    NetworkInfo,
    NetworkSummary,
    NNClient,
    NNError,
    TrainingStarted,
    TrainingStatus,
    Versions,
    default_host,
)

LIST_NETWORKS = "list_nn"
OPERATIONS = ("classify", "status", "about", "train", "versions", "serve", "export")
# What each operation takes after it: classify an optional file, serve a version, export a
# version and a file; the rest nothing.
ARGUMENTS = {"classify": (0, 1), "serve": (1, 1), "export": (2, 2)}
# The menu's choices; serving happens from the versions table.
MENU_OPERATIONS = ("classify", "status", "about", "train", "versions")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
IMAGES_DIR = Path(__file__).resolve().with_name("images")
# host:port, optionally with a scheme: "127.0.0.1:5000", "https://nn.local:8443", "[::1]:80"
ADDRESS = re.compile(
    r"^(?:(?P<scheme>https?)://)?(?P<host>\[[0-9a-fA-F:.]+\]|[^\s/:\[\]]+):(?P<port>\d+)/?$"
)
PREVIEW_WIDTH = 28
QUIT_WORDS = ("q", "quit", "exit")


class UsageError(Exception):
    """The command line cannot be understood; the message says why, in one line."""


class Quit(Exception):
    """The user asked to leave (``q``, end of input)."""


# -- parse --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """What the user asked for. ``network is None`` means the interactive menu."""

    base_url: str
    network: str | None = None
    operation: str | None = None
    file: Path | None = None
    version: str | None = None
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    verify: bool | str = True
    timeout: float = 30.0
    wait: bool = False
    poll_interval: float = 0.5
    images_dir: Path = IMAGES_DIR

    def client(self) -> NNClient:
        return NNClient(
            self.base_url,
            user=self.user,
            password=self.password,
            verify=self.verify,
            timeout=self.timeout,
        )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _parser() -> _Parser:
    parser = _Parser(
        prog="python cli.py",
        description="\n\n".join((__doc__ or "").split("\n\n")[:3]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("words", nargs="*", metavar="[host:port] [network operation [file]]")
    parser.add_argument("--user", default=os.environ.get("NN_USER", DEFAULT_USER),
                        help=f"user name (default: $NN_USER, else {DEFAULT_USER})")
    parser.add_argument("--password", default=os.environ.get("NN_PASSWORD", DEFAULT_PASSWORD),
                        help="password (default: $NN_PASSWORD, else the seed's)")
    parser.add_argument("--https", action="store_true", help="talk HTTPS")
    parser.add_argument("--cafile", type=Path,
                        help="trust this certificate (e.g. the server's ssl/cert.pem); "
                        "implies --https")
    parser.add_argument("--insecure", action="store_true",
                        help="HTTPS without checking the certificate; implies --https")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--wait", action="store_true",
                        help="train: follow the training with a progress bar until it ends")
    parser.add_argument("--poll-interval", type=float, default=0.5, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=Path, default=IMAGES_DIR,
                        help="where the image picker looks: images/<network>/ there, else "
                             "images/ itself (default: images/ beside cli.py)")
    return parser


def parse(argv: Sequence[str]) -> Command:
    """The ``Command`` for ``argv``; raises ``UsageError``."""
    args = _parser().parse_intermixed_args(list(argv))
    words: list[str] = list(args.words)
    scheme = "https" if (args.https or args.cafile or args.insecure) else "http"
    base_url = f"{scheme}://{default_host()}:{DEFAULT_PORT}"
    if words and (match := ADDRESS.match(words[0])):
        words.pop(0)
        port = int(match["port"])
        if not 0 < port < 65536:
            raise UsageError(f"port out of range: {port}")
        base_url = f"{match['scheme'] or scheme}://{match['host']}:{port}"
    if args.cafile is not None and args.insecure:
        raise UsageError("--cafile and --insecure contradict each other; choose one")
    verify: bool | str = True
    if args.cafile is not None:
        if not args.cafile.is_file():
            raise UsageError(f"certificate file not found: {args.cafile}")
        verify = str(args.cafile)
    elif args.insecure:
        verify = False
    command = Command(
        base_url=base_url, user=args.user, password=args.password, verify=verify,
        timeout=args.timeout, wait=args.wait, poll_interval=args.poll_interval,
        images_dir=args.images,
    )
    network, operation, arguments = _target(words)
    version = arguments[0] if operation in ("serve", "export") else None
    files = arguments[1:] if version is not None else arguments
    return replace(command, network=network, operation=operation, version=version,
                   file=Path(files[0]) if files else None)


def _target(words: list[str]) -> tuple[str | None, str | None, list[str]]:
    """network, operation and its arguments from the positional words (after host:port)."""
    if not words:
        return None, None, []
    network, rest = words[0], words[1:]
    if network == LIST_NETWORKS:
        if rest:
            raise UsageError(f"{LIST_NETWORKS} takes no operation, got {' '.join(rest)!r}")
        return network, None, []
    if not rest:
        raise UsageError(
            f"missing operation after {network!r}: choose one of {', '.join(OPERATIONS)}"
        )
    operation, extra = rest[0], rest[1:]
    if operation not in OPERATIONS:
        raise UsageError(
            f"unknown operation {operation!r}: choose one of {', '.join(OPERATIONS)}"
        )
    least, most = ARGUMENTS.get(operation, (0, 0))
    if not least <= len(extra) <= most:
        wanted = {"classify": "at most one file", "serve": "a version",
                  "export": "a version and a file name"}.get(operation, "nothing")
        got = f", got {' '.join(extra)!r}" if extra else ""
        raise UsageError(f"{operation} takes {wanted}{got}")
    return network, operation, extra


# -- act ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifiedImage:
    """A classified file: where it came from, its bytes (for the preview), the answer."""

    path: Path
    data: bytes
    result: Classification
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Served:
    """``serve``: the network now serves this version."""

    network: str
    version: str


@dataclass(frozen=True)
class Exported:
    """``export``: a version saved as an ONNX model."""

    network: str
    version: str
    path: Path
    size: int


Outcome = (
    tuple[NetworkSummary, ...] | NetworkInfo | TrainingStarted | TrainingStatus
    | ClassifiedImage | Versions | Served | Exported
)


def read_image(path: Path) -> bytes:
    """The file's bytes; ``UsageError`` if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


async def classify(client: NNClient, network: str, path: Path) -> ClassifiedImage:
    data = read_image(path)
    result = await client.classify(data, network)
    return ClassifiedImage(path, data, result)


async def act(client: NNClient, command: Command) -> Outcome:
    """Perform a non-interactive command (``network`` set; classify needs ``file``)."""
    network, operation = command.network, command.operation
    if network == LIST_NETWORKS:
        return await client.list_networks()
    assert network is not None and operation is not None
    if operation == "classify":
        assert command.file is not None
        return await classify(client, network, command.file)
    if operation == "status":
        return await client.status(network)
    if operation == "about":
        return await client.about(network)
    if operation == "versions":
        return await client.versions(network)
    if operation == "serve":
        assert command.version is not None
        return Served(network, await client.serve(command.version, network))
    if operation == "export":
        assert command.version is not None and command.file is not None
        path = await client.export_onnx(command.version, command.file, network)
        return Exported(network, command.version, path, path.stat().st_size)
    return await client.train(network)


async def train_and_follow(
    client: NNClient,
    network: str,
    on_progress: Callable[[TrainingStatus], object],
    poll_interval: float,
) -> TrainingStatus:
    """Start training and poll until it ends; ``on_progress`` sees every status."""
    await client.train(network)
    return await client.wait_for_training(
        network, poll_interval=poll_interval, on_progress=on_progress
    )


def samples_dir(images_dir: Path, network: str) -> Path:
    """Where a network's sample images are: ``images/<network>/`` (e.g. ``images/fashion``),
    else ``images/`` itself, which holds LeNet's digits."""
    own = images_dir / network
    return own if own.is_dir() else images_dir


def list_images(directory: Path) -> list[Path]:
    """The images the picker offers, sorted by name."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


# -- render -------------------------------------------------------------------------------


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
                    f"{_display(outcome.path)} ({outcome.size:,} bytes)")
    return render_classification(outcome, color=color)


def render_versions(versions: Versions) -> RenderableType:
    """The versions, newest first, the served one marked."""
    table = Table(title=f"Versions of {versions.network}", title_justify="left")
    for column in ("#", "", "version", "accuracy", "trained", "epochs", "source", "note"):
        table.add_column(column, justify="right" if column in ("#", "epochs") else "left")
    for number, v in enumerate(versions.versions, 1):
        note = "served" if v.served else "rollback" if v.version == versions.previous else ""
        if not v.promoted:
            note = f"not promoted: {v.reason}" if v.reason else "not promoted"
        table.add_row(
            str(number), Text("▶", style="bold green") if v.served else "",
            Text(v.version, style="bold green" if v.served else ""),
            "—" if v.accuracy is None else f"{v.accuracy:.2f} %",
            "—" if v.datetime is None else f"{v.datetime:%Y-%m-%d %H:%M}",
            "—" if v.epochs is None else str(v.epochs), v.source or "", note,
        )
    return table


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
    answer.add_row(Text(_display(item.path), style="dim"))
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


# -- interaction ----------------------------------------------------------------------------


@dataclass
class Screen:
    """The two consoles (stdout for answers, stderr for errors) and how to read a line."""

    out: Console
    err: Console

    def ask(self, prompt: str) -> str:
        """A line from the user, trimmed; ``Quit`` on ``q`` or end of input."""
        try:
            answer = self.out.input(f"[bold]{prompt}[/] ").strip()
        except EOFError:
            raise Quit from None
        if answer.lower() in QUIT_WORDS:
            raise Quit
        return answer

    def error(self, error: Exception, command: Command | None = None) -> None:
        self.err.print(render_error(error, command), soft_wrap=True, highlight=False,
                       style="red")

    def show(self, renderable: RenderableType) -> None:
        self.out.print(renderable)

    @property
    def color(self) -> bool:
        return self.out.color_system is not None


def pick_image(screen: Screen, directory: Path) -> Path:
    """Ask for one of ``directory``'s images by number, or any path; ``Quit`` on q."""
    images = list_images(directory)
    if images:
        screen.show(Text(f"Images in {_display(directory)}:", style="bold"))
        screen.show(Columns(
            [Text.assemble((f"{number:>3} ", "bold cyan"), path.name)
             for number, path in enumerate(images, 1)],
            column_first=True, padding=(0, 3),
        ))
    else:
        screen.show(Text(f"No images in {_display(directory)}.", style="yellow"))
    while True:
        answer = screen.ask("Image number or path (q quits):")
        if answer.isdigit() and images:
            index = int(answer)
            if 1 <= index <= len(images):
                return images[index - 1]
            screen.show(Text(f"Choose 1–{len(images)}.", style="yellow"))
            continue
        path = Path(answer).expanduser()
        if answer and path.is_file():
            return path
        screen.show(Text(
            f"No such file: {answer!r}. Formats: {', '.join(SUPPORTED_FORMATS)}.", style="yellow"
        ))


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def training_progress(screen: Screen) -> Progress:
    return Progress(
        TextColumn("[bold]training[/]"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        console=screen.out,
    )


async def follow_training(
    screen: Screen, client: NNClient, network: str, poll_interval: float, *, start: bool
) -> TrainingStatus:
    """Train (if ``start``) and show a live progress bar until training ends."""
    with training_progress(screen) as progress:
        task: TaskID = progress.add_task("training", total=100, detail="starting…")

        def update(status: TrainingStatus) -> None:
            fraction = status.progress.fraction if status.progress else 0.0
            if not status.is_training and status.state == "idle":
                fraction = 1.0
            progress.update(task, completed=fraction * 100, detail=progress_detail(status))

        if start:
            return await train_and_follow(client, network, update, poll_interval)
        return await client.wait_for_training(
            network, poll_interval=poll_interval, on_progress=update
        )


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


class Menu:
    """The interactive menu: choose a network, then an operation, until ``q``."""

    def __init__(self, screen: Screen, command: Command, runner: asyncio.Runner,
                 client: NNClient) -> None:
        self.screen = screen
        self.command = command
        self.runner = runner
        self.client = client
        self.labels: dict[str, tuple[str, ...]] = {}

    def run(self) -> None:
        self.screen.show(Panel.fit(
            Text.assemble(("nn-server client\n", "bold"), "server ",
                          (self.command.base_url, "cyan"), f"  user {self.command.user}"),
        ))
        while True:
            network = self.choose_network()
            if network is not None:
                self.network_menu(network)

    def choose_network(self) -> str | None:
        try:
            networks = self.runner.run(self.client.list_networks())
        except NNError as exc:
            self.screen.error(exc, self.command)
            self.screen.ask("Enter retries, q quits:")
            return None
        self.screen.show(render_networks(networks))
        names = [n.name for n in networks]
        while True:
            answer = self.screen.ask("Network number or name (q quits):")
            if answer.isdigit() and 1 <= int(answer) <= len(names):
                return names[int(answer) - 1]
            if answer in names:
                return answer
            self.screen.show(Text(f"Choose 1–{len(names)} or a name.", style="yellow"))

    def network_menu(self, network: str) -> None:
        choices = {str(i): op for i, op in enumerate(MENU_OPERATIONS, 1)}
        while True:
            line = Text.assemble((f"{network}: ", "bold"))
            for key, op in choices.items():
                line.append(f"[{key}] {op}  ")
            line.append("[b] back  [q] quit")
            self.screen.show(line)
            answer = self.screen.ask("Operation:")
            if answer.lower() in ("b", "back"):
                return
            operation = choices.get(answer, answer)
            if operation not in MENU_OPERATIONS:
                self.screen.show(Text(f"Unknown operation {answer!r}.", style="yellow"))
                continue
            try:
                self.perform(network, operation)
            except (NNError, UsageError) as exc:
                self.screen.error(exc, self.command)

    def perform(self, network: str, operation: str) -> None:
        if operation == "classify":
            path = pick_image(self.screen, samples_dir(self.command.images_dir, network))
            item = self.runner.run(classify(self.client, network, path))
            if network not in self.labels:
                self.labels[network] = self.runner.run(self.client.about(network)).labels
            self.screen.show(render_classification(replace(item, labels=self.labels[network]),
                                                   color=self.screen.color))
        elif operation == "train":
            status = self.runner.run(follow_training(
                self.screen, self.client, network, self.command.poll_interval, start=True
            ))
            self.screen.show(render_training_result(status, network))
        elif operation == "versions":
            self.versions(network)
        else:
            command = replace(self.command, network=network, operation=operation)
            self.screen.show(render(self.runner.run(act(self.client, command)),
                                    color=self.screen.color))


    def versions(self, network: str) -> None:
        """The versions table, then serve one of them by its number (Enter: back)."""
        versions = self.runner.run(self.client.versions(network))
        self.screen.show(render_versions(versions))
        while True:
            answer = self.screen.ask("Number of a version to serve (Enter goes back):")
            if not answer or answer.lower() in ("b", "back"):
                return
            if answer.isdigit() and 1 <= int(answer) <= len(versions.versions):
                chosen = versions.versions[int(answer) - 1].version
                served = self.runner.run(self.client.serve(chosen, network))
                self.screen.show(render(Served(network, served), color=self.screen.color))
                return
            self.screen.show(Text(f"Choose 1–{len(versions.versions)}.", style="yellow"))


def run_menu(screen: Screen, command: Command) -> int:
    """The interactive menu until the user quits (``q``, Ctrl-D or Ctrl-C)."""
    client = command.client()
    with asyncio.Runner() as runner:
        try:
            runner.run(client.__aenter__())
            Menu(screen, command, runner, client).run()
        except (Quit, KeyboardInterrupt):
            screen.show(Text("\nBye."))
        finally:
            runner.run(client.aclose())
    return 0


async def run_command(screen: Screen, command: Command) -> None:
    """Argument mode: perform ``command`` and print its result."""
    assert command.network is not None
    async with command.client() as client:
        if command.operation == "train" and command.wait:
            status = await follow_training(screen, client, command.network,
                                           command.poll_interval, start=True)
            screen.show(render_training_result(status, command.network))
            return
        outcome = await act(client, command)
        if isinstance(outcome, ClassifiedImage):
            outcome = replace(outcome, labels=(await client.about(command.network)).labels)
        screen.show(render(outcome, color=screen.color))


def main(
    argv: Sequence[str] | None = None,
    *,
    console: Console | None = None,
    err_console: Console | None = None,
) -> int:
    """Run the client; returns the exit status (0 ok, 1 error, 130 interrupted)."""
    screen = Screen(console or Console(), err_console or Console(stderr=True))
    command: Command | None = None
    try:
        command = parse(sys.argv[1:] if argv is None else argv)
        if command.network is None:
            return run_menu(screen, command)
        if command.operation == "classify" and command.file is None:
            images = samples_dir(command.images_dir, command.network)
            command = replace(command, file=pick_image(screen, images))
        asyncio.run(run_command(screen, command))
    except (NNError, UsageError) as exc:
        screen.error(exc, command)
        return 1
    except ValueError as exc:  # NNClient refusing an option value, e.g. "--user a:b"
        screen.error(UsageError(str(exc)), command)
        return 1
    except Quit:
        screen.error(UsageError("no image chosen"))
        return 1
    except KeyboardInterrupt:
        screen.err.print("interrupted", style="red")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
