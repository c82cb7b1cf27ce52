"""The interactive menu in a real pseudo-terminal (pexpect), colours and all."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pexpect
import pytest
from cli_harness import ROOT, SAMPLES, address

from nn_sdk import NNClient, TrainingStatus

CSI = r"(?:\x1b\[[0-9;?]*[A-Za-z])*"
"""Any run of terminal escape sequences Rich puts between words."""
GAP = r"(?:\s|\x1b\[[0-9;?]*[A-Za-z])+"
"""Blanks between table cells, with escape sequences mixed in."""
TRAINING_LIMIT_S = 240


def default_sigint() -> None:
    """Ctrl-C as a terminal user has it, however the suite was started: a process started
    in the background by a shell without job control (``nohup ... &``) inherits SIGINT
    ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(*argv: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable, ["cli.py", *argv], cwd=str(ROOT), encoding="utf-8",
        dimensions=(50, 130), timeout=30, preexec_fn=default_sigint,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "130", "LINES": "50"},
    )


@pytest.fixture
def menu_on(request: pytest.FixtureRequest) -> Iterator[Any]:
    children: list[pexpect.spawn] = []

    def start(*argv: str) -> pexpect.spawn:
        child = spawn(*argv)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def choose_lenet(child: pexpect.spawn) -> None:
    child.expect("Network number or name")
    child.sendline("1")
    child.expect("Operation:")


def says_bye_and_exits(child: pexpect.spawn) -> None:
    """After ``q`` or Ctrl-C: "Bye", then a clean exit with no traceback."""
    child.expect("Bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "Traceback" not in (child.before or "")


def test_classify_from_the_picker_then_quit(shipped_server: Any, menu_on: Any) -> None:
    child = menu_on(address(shipped_server))
    child.expect(f"server {CSI}{shipped_server.url}")  # the address is shown
    choose_lenet(child)
    child.sendline("1")  # classify
    image = next((p for p in SAMPLES if p.name.startswith("7")), SAMPLES[0])
    child.expect("Image number or path")
    assert image.name in child.before
    child.sendline(str(SAMPLES.index(image) + 1))
    child.expect(f"Answer: {CSI}(\\d)")
    assert child.match.group(1) == image.name[0]
    child.expect("▀")  # the half-block preview, in colour
    child.expect("Operation:")
    child.sendline("3")  # about
    child.expect("labels: 0 1 2 3 4 5 6 7 8 9")
    child.expect("Operation:")
    child.sendline("q")
    says_bye_and_exits(child)


def test_train_with_live_progress_then_ctrl_c(tls_training_server: Any, menu_on: Any) -> None:
    child = menu_on(address(tls_training_server), "--cafile", str(tls_training_server.cafile),
                    "--poll-interval", "0.2")
    choose_lenet(child)
    child.sendline("4")  # train
    child.expect("training")
    child.expect(r"\d+%")  # the live bar
    child.expect(f"Training of {CSI}lenet{CSI} finished", timeout=TRAINING_LIMIT_S)
    child.expect("Operation:")
    child.sendline("2")  # status
    child.expect(f"state{GAP}idle")
    child.expect("Operation:")
    child.sendcontrol("c")
    says_bye_and_exits(child)


def test_q_at_the_image_picker_goes_back_one_level(shipped_server: Any, menu_on: Any) -> None:
    child = menu_on(address(shipped_server))
    choose_lenet(child)
    child.sendline("1")  # classify
    child.expect(f"Image number or path {CSI}\\({CSI}q goes back")
    child.sendline("q")
    child.expect("Operation:")  # back at lenet's operations, not gone
    child.sendline("3")  # about
    child.expect("labels: 0 1 2 3 4 5 6 7 8 9")
    child.expect("Operation:")
    child.sendline("q")
    says_bye_and_exits(child)


def test_q_at_the_network_list_quits(shipped_server: Any, menu_on: Any) -> None:
    child = menu_on(address(shipped_server))
    child.expect(f"Network number or name {CSI}\\({CSI}q quits")
    child.sendline("q")
    says_bye_and_exits(child)


def test_ctrl_c_while_following_a_training_goes_back_and_it_goes_on(
    tls_training_server: Any, menu_on: Any
) -> None:
    cafile = str(tls_training_server.cafile)

    async def status(*, wait: bool) -> TrainingStatus:
        async with NNClient(tls_training_server.url, verify=cafile) as client:
            if wait:
                return await client.wait_for_training(poll_interval=0.2,
                                                      timeout=TRAINING_LIMIT_S)
            return await client.status()

    before = asyncio.run(status(wait=False))
    assert before.state == "idle", "another test left the server training"
    child = menu_on(address(tls_training_server), "--cafile", cafile, "--poll-interval", "0.2")
    try:
        choose_lenet(child)
        child.sendline("4")  # train
        child.expect(r"training.*\d+%")  # the live bar: the training has started
        child.sendcontrol("c")
        child.expect(f"Stopped following; the training of {CSI}lenet{CSI} goes on on the server")
        child.expect("Operation:")  # back in lenet's menu, not quit
        child.sendline("2")  # status
        child.expect(f"state{GAP}(training|idle)")
        child.expect("Operation:")
        child.sendline("q")
        says_bye_and_exits(child)
    finally:
        final = asyncio.run(status(wait=True))  # also leaves the server idle for the next test
    # The training the menu stopped following finished on the server.
    assert final.state == "idle" and final.error is None
    assert final.datetime is not None
    assert before.datetime is None or final.datetime > before.datetime


def test_unreachable_server_in_the_menu(menu_on: Any) -> None:
    child = menu_on("127.0.0.1:1")
    child.expect("error: cannot connect to http://127.0.0.1:1")
    child.expect("Enter retries, q quits")
    child.sendline("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
