"""What install.sh installs: its refusals, clear and immediate, before anything is
installed; and that its runtime install alone (no dev extras) is enough to serve."""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

from nn_server.networks import load_registry
from tests.conftest import ROOT, SHIPPED, basic_auth, start_server

REGISTRY = load_registry()


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


def canonical(requirement: str) -> str:
    """A requirement's distribution name, normalised as PyPI does (PEP 503)."""
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def dev_only_modules() -> list[str]:
    """The top-level modules of every distribution ``dev`` adds to the runtime install."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {canonical(r) for r in project["dependencies"]}
    dev = {canonical(r) for r in project["optional-dependencies"]["dev"]} - runtime
    return sorted(module for module, dists in importlib.metadata.packages_distributions().items()
                  if module.isidentifier() and any(canonical(d) in dev for d in dists))


def hiding(modules: list[str], folder: Path) -> dict[str, str]:
    """Environment for a Python in which ``modules`` cannot be imported, as if not installed."""
    (folder / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules))
    return {"PYTHONPATH": str(folder)}


def test_the_server_serves_with_the_runtime_install_alone(tmp_path: Path) -> None:
    hidden = dev_only_modules()
    env = hiding(hidden, tmp_path)
    assert {"pytest", "playwright", "tritonclient"} <= set(hidden)
    refused = subprocess.run([sys.executable, "-c", "import pytest"], env={**os.environ, **env},
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "ModuleNotFoundError" in refused.stderr

    with start_server("127.0.0.1:0", "--workers", "1",
                      env={**env, "NN_SEED_WEIGHTS": str(SHIPPED)}) as live:
        for name, cls in REGISTRY.items():
            sample = cls.sample_files()[0]
            request = urllib.request.Request(
                f"{live.url}/{name}/classify", method="POST",
                data=json.dumps({"image": base64.b64encode(sample.read_bytes()).decode()}).encode(),
                headers={"Authorization": basic_auth(*live.auth),
                         "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.load(response)
            assert answer["label"] == cls.sample_label(sample), (name, sample, answer)
        assert "Traceback" not in live.output()


def test_without_onnx_runtime_the_server_refuses_to_start(tmp_path: Path) -> None:
    env = {**os.environ, **hiding(["onnxruntime"], tmp_path),
           "NN_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-m", "nn_server", "-d", "127.0.0.1:0"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "needs ONNX Runtime" in done.stderr and "NN_RUNTIME=mxnet" in done.stderr
    assert "Traceback" not in done.stderr and "Serving on" not in done.stdout
