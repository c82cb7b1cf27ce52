"""The training status: every transition, the file round trip, what a reader derives from
the lock (without writing), and the one type behind the route and the OpenAPI schema."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nn_server.networks import load_registry
from nn_server.store.base import Lease
from nn_server.store.local import LocalStore
from nn_server.store.status import Epoch, Progress, TrainingStatus
from nn_server.web import openapi

REGISTRY = load_registry()

NOW = "2026-12-01 10:00:00"
LATER = "2026-12-01 10:05:00"
PROGRESS = Progress.at(2, 8, 100, 469, 0.05, 0.98, 31.2)


def test_progress_knows_its_fraction_and_time_left() -> None:
    assert PROGRESS.fraction == pytest.approx((469 + 100) / (8 * 469))
    assert PROGRESS.eta_s == pytest.approx(31.2 * (1 - PROGRESS.fraction) / PROGRESS.fraction)
    done = Progress.at(1, 1, 10, 10, 0.1, 0.9, 5.0)
    assert (done.fraction, done.eta_s) == (1.0, 0.0)
    assert Progress.from_json(PROGRESS.to_json()).epoch == 2


def test_a_training_runs_from_idle_through_progress_to_finished() -> None:
    idle = TrainingStatus(accuracy="99.57", datetime="2026-11-27 23:21:21")
    assert (idle.state, idle.is_training) == ("idle", False)
    starting = idle.starting(4242, NOW)
    assert (starting.state, starting.stage, starting.pid, starting.started) == (
        "training", "starting", 4242, NOW)
    assert (starting.accuracy, starting.datetime) == ("99.57", "2026-11-27 23:21:21"), (
        "the last result stays until a new one replaces it")
    staged = starting.staged("loading MNIST")
    assert staged.stage == "loading MNIST" and staged.is_training
    running = staged.progressed(PROGRESS)
    assert (running.stage, running.progress, running.history) == ("training", PROGRESS, ())
    end_of_epoch = Progress.at(2, 8, 469, 469, 0.04, 0.985, 40.0)
    running = running.progressed(end_of_epoch)
    assert running.history == (Epoch(2, 0.04, 0.985),), "each finished epoch is kept"
    done = running.finished_with("99.61", LATER, LATER, version="0123456789ab", promoted=True)
    assert (done.state, done.stage, done.accuracy, done.datetime, done.finished) == (
        "idle", "finished", "99.61", LATER, LATER)
    assert (done.version, done.promoted, done.reason) == ("0123456789ab", True, None)
    assert done.pid is None and done.error is None
    assert done.progress == end_of_epoch, "the last progress is kept, for the final figures"
    assert done.starting(9, LATER).history == (), "a new training starts a new curve"


def test_a_training_that_is_not_promoted_says_why() -> None:
    done = TrainingStatus(accuracy="99.57").starting(1, NOW).finished_with(
        "53.60", LATER, LATER, version="0123456789ab", promoted=False,
        reason="53.60 % < 99.57 % of the served weights")
    assert done.state == "idle" and done.promoted is False and "99.57 %" in (done.reason or "")
    assert TrainingStatus.from_json(done.to_json()) == done


def test_a_failed_training_keeps_the_last_result() -> None:
    running = TrainingStatus(accuracy="99.57", datetime=NOW).starting(7, NOW)
    failed = running.failed("training failed: MemoryError", LATER)
    assert (failed.state, failed.error, failed.finished, failed.pid) == (
        "failed", "training failed: MemoryError", LATER, None)
    assert (failed.accuracy, failed.datetime) == ("99.57", NOW)
    again = failed.starting(8, LATER)
    assert again.error is None and again.is_training, "a new training clears the old error"


def test_statuses_are_frozen_values() -> None:
    status = TrainingStatus()
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.state = "training"  # type: ignore[misc]


def test_the_file_form_round_trips() -> None:
    status = TrainingStatus(accuracy="99.57", datetime=NOW).starting(7, NOW).progressed(PROGRESS)
    data = json.loads(json.dumps(status.to_json()))
    back = TrainingStatus.from_json(data)
    assert back.to_json() == status.to_json()
    assert back.progress is not None and back.progress.epoch == 2


@pytest.mark.parametrize("data", [
    {"state": "exploded"}, {"state": "training", "progress": {"epoch": 1}},
    {"state": "idle", "progress": "half"},
])
def test_a_file_that_is_not_a_status_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TrainingStatus.from_json(data)


# -- what a reader reports, from the file and the lock -------------------------------------


@pytest.fixture
def state(tmp_path: Path) -> LocalStore:
    network = LocalStore(tmp_path, "lenet")
    network.root.mkdir(parents=True)
    return network


@pytest.fixture
def held_lock(state: LocalStore) -> Iterator[Lease]:
    """``train.lock`` held by another process (as a trainer holds it)."""
    lease = state.try_lease()
    assert lease is not None
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.stdin.read()"],
        stdin=subprocess.PIPE, pass_fds=lease.pass_fds,
    )
    try:
        yield lease
    finally:
        lease.close()
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


def test_no_status_file_describes_the_served_weights(state: LocalStore) -> None:
    assert state.status() == TrainingStatus()
    state.write_status(TrainingStatus(accuracy="99.57", datetime=NOW))
    assert state.status().accuracy == "99.57"


def test_a_trainer_that_died_is_reported_failed_without_writing(state: LocalStore) -> None:
    state.write_status(TrainingStatus().starting(999_999, NOW))
    written = state.status_path.read_bytes()
    reported = state.status()
    assert reported.state == "failed" and "999999" in (reported.error or "")
    assert state.status_path.read_bytes() == written, "reading never writes"


def test_a_started_trainer_is_reported_before_it_writes(
    state: LocalStore, held_lock: Lease
) -> None:
    state.write_status(TrainingStatus(accuracy="99.57", datetime=NOW))
    held_lock.name(4242)
    reported = state.status()
    assert (reported.state, reported.stage, reported.pid) == ("training", "starting", 4242)
    assert state.written_or_idle().state == "idle", "the file is left as it was"


def test_a_trainer_handing_back_is_trusted(state: LocalStore, held_lock: Lease) -> None:
    """The trainer clears its pid, writes its verdict, then lets go of the lock: in between,
    the verdict is what readers report."""
    held_lock.name(None)
    state.write_status(TrainingStatus().starting(1, NOW).finished_with(
        "99.6", LATER, LATER, version="0123456789ab", promoted=True))
    assert state.status().state == "idle"
    state.write_status(TrainingStatus().starting(1, NOW))
    assert state.status().state == "training", "a live trainer with its pid cleared"


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file system refuses every write, as a read-only mount does (root ignores a
    directory's mode, so the refusal is made where files are opened)."""
    real_open = os.open

    def refusing_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
            raise PermissionError(30, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    def refusing(*args: object, **kwargs: object) -> None:
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(os, "open", refusing_open)
    monkeypatch.setattr(os, "replace", refusing)
    monkeypatch.setattr(os, "mkdir", refusing)
    monkeypatch.setattr("tempfile.mkstemp", refusing)


@pytest.mark.parametrize("written", [
    None, TrainingStatus(accuracy="99.57", datetime=NOW),
    TrainingStatus().starting(999_999, NOW),  # a dead trainer: reported, not recorded
    TrainingStatus().starting(1, NOW).failed("out of memory", LATER),
])
def test_a_read_only_state_directory_still_answers(
    tmp_path: Path, written: TrainingStatus | None, request: pytest.FixtureRequest
) -> None:
    state = LocalStore(tmp_path, "lenet")
    state.root.mkdir(parents=True)
    if written is not None:
        state.write_status(written)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in state.root.iterdir())
    request.getfixturevalue("read_only")
    reported = state.status()
    assert reported.state == (written.state if written and written.pid != 999_999 else
                              "failed" if written else "idle")
    assert not state.trainer_running() and not state.is_training()
    assert sorted((p.name, p.stat().st_mtime_ns) for p in state.root.iterdir()) == before


def test_the_route_and_the_openapi_schema_come_from_one_type() -> None:
    document = openapi.document(REGISTRY.values())
    schema = document["components"]["schemas"]["TrainingStatus"]
    fields = {f.name for f in dataclasses.fields(TrainingStatus)}
    assert set(schema["properties"]) == fields | {"weights_version"}
    assert set(schema["required"]) == set(schema["properties"])
    assert schema["properties"]["state"] == {"enum": ["idle", "training", "failed"]}
    progress = schema["properties"]["progress"]["anyOf"][0]
    assert set(progress["properties"]) == {f.name for f in dataclasses.fields(Progress)}
    epoch = schema["properties"]["history"]["items"]
    assert set(epoch["properties"]) == {f.name for f in dataclasses.fields(Epoch)}
