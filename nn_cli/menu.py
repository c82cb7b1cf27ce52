"""The interactive menu: choose a network, then an operation, until ``q``.

Where the user is decides what ``q`` and Ctrl-C do: ``q`` at the network list (or at an
operation prompt) quits, ``q`` at the image picker goes back to the operations; Ctrl-C
while a training is followed stops following it (the server goes on training) and goes
back to the operations, anywhere else it quits.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from rich.panel import Panel
from rich.text import Text

from nn_cli.act import Served, act, classify, samples_dir
from nn_cli.parse import Command, UsageError
from nn_cli.render import (
    render,
    render_classification,
    render_networks,
    render_training_followed,
    render_training_result,
    render_versions,
)
from nn_cli.screen import Quit, Screen, follow_training, pick_image
from nn_sdk import NNClient, NNError

# The menu's choices; serving happens from the versions table.
MENU_OPERATIONS = ("classify", "status", "about", "train", "versions")


class Menu:
    """The menu's loops, on one client and one event loop (``runner``) for the session."""

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
            self.classify(network)
        elif operation == "train":
            self.train(network)
        elif operation == "versions":
            self.versions(network)
        else:
            command = replace(self.command, network=network, operation=operation)
            self.screen.show(render(self.runner.run(act(self.client, command)),
                                    color=self.screen.color))

    def classify(self, network: str) -> None:
        """Pick an image and classify it; ``q`` at the picker goes back to the operations."""
        try:
            path = pick_image(self.screen, samples_dir(self.command.images_dir, network),
                              q_means="goes back")
        except Quit:
            return
        item = self.runner.run(classify(self.client, network, path))
        if network not in self.labels:
            self.labels[network] = self.runner.run(self.client.about(network)).labels
        self.screen.show(render_classification(replace(item, labels=self.labels[network]),
                                               color=self.screen.color))

    def train(self, network: str) -> None:
        """Start a training and follow it; Ctrl-C stops following, not the training."""
        self.runner.run(self.client.train(network))
        try:
            status = self.runner.run(follow_training(
                self.screen, self.client, network, self.command.poll_interval, start=False
            ))
        except KeyboardInterrupt:  # asyncio.Runner cancelled the polling, then raised this
            self.screen.show(render_training_followed(network))
            return
        self.screen.show(render_training_result(status, network))

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
