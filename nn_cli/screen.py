"""The terminal: two consoles, reading an answer, the image picker, the live training bar.

Both the argument mode and the menu use these; only the menu loops over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.text import Text

from nn_cli.act import list_images, train_and_follow
from nn_cli.parse import Command
from nn_cli.render import progress_detail, render_error, render_images
from nn_sdk import SUPPORTED_FORMATS, NNClient, TrainingStatus

QUIT_WORDS = ("q", "quit", "exit")


class Quit(Exception):
    """The user asked to leave (``q``, end of input)."""


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


def pick_image(screen: Screen, directory: Path, *, q_means: str = "quits") -> Path:
    """Ask for one of ``directory``'s images by number, or any path; ``Quit`` on q.

    ``q_means`` is what the prompt says ``q`` does where the picker is used.
    """
    images = list_images(directory)
    screen.show(render_images(directory, images))
    while True:
        answer = screen.ask(f"Image number or path (q {q_means}):")
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
