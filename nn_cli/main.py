"""``main``: parse, then the menu or one command; errors become one line on stderr."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace

from rich.console import Console

from nn_cli.act import ClassifiedImage, act, samples_dir
from nn_cli.menu import run_menu
from nn_cli.parse import Command, UsageError, parse
from nn_cli.render import render, render_training_result
from nn_cli.screen import Quit, Screen, follow_training, pick_image
from nn_sdk import NNError


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
    except (NNError, UsageError) as exc:  # the SDK's refusals too, e.g. "--user a:b"
        screen.error(exc, command)
        return 1
    except Quit:
        screen.error(UsageError("no image chosen"))
        return 1
    except KeyboardInterrupt:
        screen.err.print("interrupted", style="red")
        return 130
    return 0
