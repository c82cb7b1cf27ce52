"""Helpers for the CLI tests: run ``cli.main`` in-process, or ``python cli.py`` for real."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

import cli
from nn_cli.act import IMAGE_SUFFIXES

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"
SAMPLES = sorted(p for p in IMAGES.glob("[0-9]_*") if p.suffix.lower() in IMAGE_SUFFIXES)
"""images/<digit>_*: the right answer is the name's first character."""


@dataclass(frozen=True)
class Run:
    """What one run of the client did."""

    code: int
    out: str
    err: str


def run_cli(*argv: str) -> Run:
    """``cli.main(argv)`` with both consoles on StringIO: plain text, no colour, 120 wide."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        list(argv),
        console=Console(file=out, width=120, color_system=None),
        err_console=Console(file=err, width=120, color_system=None),
    )
    return Run(code, out.getvalue(), err.getvalue())


def run_process(*argv: str, timeout: float = 60, **env: str) -> Run:
    """``python cli.py argv`` in the repository root, output piped (so no colour)."""
    done = subprocess.run(
        [sys.executable, "cli.py", *argv], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "COLUMNS": "120", **env}, stdin=subprocess.DEVNULL,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def address(live: Any) -> str:
    """``host:port`` of a live server, the way a user types it."""
    return str(live.url).split("://", 1)[1]
