"""Damaged state: corrupt or truncated weights, an unreadable current.json, missing
weights, an unusable state directory. Each gets a clear log line and either a fallback —
the previous version, then the shipped weights — or a clear refusal to start; none leaves
a server that answers 500."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nn_server.core.files import weights_version
from nn_server.store.local import LocalStore
from tests.conftest import ROOT, SHIPPED, LiveServer, seed_weights, start_server
from tests.server.conftest import IMAGES, b64, call, wait_for

SHIPPED_VERSION = weights_version(SHIPPED)


def two_versions(state_dir: Path) -> tuple[LocalStore, str]:
    """LeNet serving the test weights, with the shipped ones as the version before."""
    state = LocalStore(state_dir, "lenet")
    assert state.seed(SHIPPED)
    trained = state.install(seed_weights()).version
    assert state.pointer() is not None and state.pointer().previous == SHIPPED_VERSION
    return state, trained


async def served_and_classifies(http, live: LiveServer) -> str:
    status, body, _ = await call(http, live, "POST", "/lenet/classify",
                                 json={"image": b64(IMAGES[0])})
    assert status == 200, body
    _, listed, _ = await call(http, live, "GET", "/lenet/versions")
    assert listed["served"] == body["weights_version"]
    return body["weights_version"]


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "missing"])
async def test_damaged_served_weights_fall_back_to_the_previous_version(
    tmp_path: Path, http, damage: str
) -> None:
    state, trained = two_versions(tmp_path / "state")
    weights = state.weights_of(trained)
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "overwritten":
        weights.write_bytes(SHIPPED.read_bytes())
    else:
        weights.unlink()
    env = {"NN_STATE_DIR": str(tmp_path / "state")}
    with start_server("-d", "127.0.0.1:0", env=env) as live:
        assert await served_and_classifies(http, live) == SHIPPED_VERSION
        assert f"the served weights {trained} are missing or damaged" in live.output()
        assert "serving the version before it" in live.output()


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"version": 3}', b"[]"])
async def test_an_unreadable_pointer_falls_back_to_the_shipped_weights(
    tmp_path: Path, http, content: bytes
) -> None:
    state, _ = two_versions(tmp_path / "state")
    state.pointer_path.write_bytes(content)
    env = {"NN_STATE_DIR": str(tmp_path / "state"), "NN_SEED_WEIGHTS": str(seed_weights())}
    with start_server("-d", "127.0.0.1:0", env=env) as live:
        assert await served_and_classifies(http, live) == SHIPPED_VERSION
        assert "current.json is unreadable; serving the shipped weights" in live.output()


async def test_weights_that_will_not_load_fall_back_in_the_worker(tmp_path: Path,
                                                                  http) -> None:
    """Intact by their hash but not LeNet's weights: the worker serves the version before."""
    state, trained = two_versions(tmp_path / "state")
    alien = tmp_path / "alien" / "lenet.params"
    alien.parent.mkdir()
    alien.write_bytes(b"these bytes are not MXNet parameters" * 100)
    bad = state.add(alien, source="trained")
    env = {"NN_STATE_DIR": str(tmp_path / "state")}
    with start_server("-d", "127.0.0.1:0", env=env) as live:
        status, body, _ = await call(http, live, "POST", f"/lenet/versions/{bad}/serve")
        assert status == 200, body

        async def fell_back() -> bool:
            return f"could not load weights {bad}.params" in live.output()

        await wait_for(fell_back, timeout=20)
        status, body, _ = await call(http, live, "POST", "/lenet/classify",
                                     json={"image": b64(IMAGES[0])})
        assert status == 200 and body["weights_version"] == trained


async def test_a_damaged_version_cannot_be_served(tmp_path: Path, http) -> None:
    state, trained = two_versions(tmp_path / "state")
    with start_server("-d", "127.0.0.1:0",
                      env={"NN_STATE_DIR": str(tmp_path / "state")}) as live:
        shipped = state.weights_of(SHIPPED_VERSION)
        shipped.write_bytes(shipped.read_bytes()[:-10])
        status, body, _ = await call(http, live, "POST",
                                     f"/lenet/versions/{SHIPPED_VERSION}/serve")
        assert status == 409 and "damaged" in body["error"], body
        assert await served_and_classifies(http, live) == trained


@pytest.mark.parametrize("where", ["a-file", "inside-a-file"])
def test_an_unusable_state_directory_refuses_to_start(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    state_dir = blocker if where == "a-file" else blocker / "state"
    done = subprocess.run(
        [sys.executable, "-m", "nn_server", "-d", "127.0.0.1:0"], cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "NN_STATE_DIR": str(state_dir), "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"state directory {state_dir}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
