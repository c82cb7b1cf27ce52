"""The README's one-liner: a client used without ``async with`` closes what it opened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SEVENS = sorted((ROOT / "images").glob("7_*"))


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    # -X dev shows ResourceWarnings and asyncio's "Unclosed client session" reports.
    return subprocess.run(
        [sys.executable, "-X", "dev", "-c", code], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env={**os.environ, "PYTHONWARNINGS": "always"},
    )


def test_one_liner_prints_and_leaks_nothing(shipped_server: Any) -> None:
    image = SEVENS[0].relative_to(ROOT)
    done = run_python(
        "import asyncio; from nn_sdk import NNClient; "
        f"print(asyncio.run(NNClient({shipped_server.url!r}).classify({str(image)!r})))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Classification(label='7', index=7, confidence=")
    assert "Unclosed" not in done.stderr and "ResourceWarning" not in done.stderr, done.stderr


def test_one_liner_over_https(tls_server: Any) -> None:
    image = SEVENS[0].relative_to(ROOT)
    done = run_python(
        "import asyncio; from nn_sdk import NNClient; "
        f"print(asyncio.run(NNClient({tls_server.url!r}, verify={str(tls_server.cafile)!r})"
        f".classify({str(image)!r})))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Classification(label=")
    assert "Unclosed" not in done.stderr and "ResourceWarning" not in done.stderr, done.stderr
