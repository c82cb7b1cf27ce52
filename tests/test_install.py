"""install.sh's refusals: they must be clear and immediate, before anything is installed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT


def run_install(*args: str, python: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"PYTHON": str(python)} if python else {})}
    return subprocess.run(["bash", str(ROOT / "install.sh"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_unknown_argument_is_a_usage_error() -> None:
    run = run_install("cuda")
    assert run.returncode == 2
    assert "unknown argument 'cuda'" in run.stderr and "gpu, dev" in run.stderr


def test_unsupported_python_is_refused_with_the_reason(tmp_path: Path) -> None:
    # A stand-in interpreter that reports Python 3.12, where numpy < 1.24 has no wheels.
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\necho 3.12\n")
    fake.chmod(0o755)
    run = run_install(python=fake)
    assert run.returncode == 1
    assert "Python 3.12" in run.stderr and "needs Python 3.11" in run.stderr
    assert "numpy < 1.24" in run.stderr


def test_missing_python_is_refused(tmp_path: Path) -> None:
    run = run_install(python=tmp_path / "no-such-python")
    assert run.returncode == 1
    assert "Python 3.11 is needed" in run.stderr


def test_help_lists_the_variants() -> None:
    run = run_install("--help")
    assert run.returncode == 0
    assert "gpu" in run.stdout and "dev" in run.stdout
