"""Versions in the state directory: kept, served, rolled back and pruned, without MXNet
(weights are stand-in bytes: the state directory only copies and points at files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nn_server.core.files import weights_version
from nn_server.store.base import UnknownVersion, is_version
from nn_server.store.local import LocalStore


def weights(tmp_path: Path, n: int, accuracy: str = "99.00", onnx: bool = False) -> Path:
    """A stand-in weights file with its record (and ONNX export) beside it."""
    path = tmp_path / "made" / f"{n}" / "lenet.params"
    path.parent.mkdir(parents=True)
    path.write_bytes(f"weights {n}".encode())
    path.with_suffix(".json").write_text(json.dumps({
        "accuracy": accuracy, "datetime": f"2026-12-01 10:00:{n:02d}", "epochs": n,
        "duration_s": 1.5,
    }))
    if onnx:
        path.with_suffix(".onnx").write_bytes(b"onnx")
    return path


@pytest.fixture
def state(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "state", "lenet", keep=3)


def test_seeding_serves_the_shipped_weights_once(state: LocalStore, tmp_path: Path) -> None:
    first = weights(tmp_path, 1, onnx=True)
    assert state.seed(first)
    assert state.seed(weights(tmp_path, 2)), "an already seeded network keeps its weights"
    pointer = state.pointer()
    assert pointer is not None and pointer.version == weights_version(first)
    [only] = state.versions()
    assert (only.served, only.source, only.promoted, only.accuracy) == (
        True, "shipped", True, "99.00")
    assert state.onnx_of(only.version).read_bytes() == b"onnx", "the export comes along"


def test_nothing_to_seed_with_leaves_the_network_unserved(state: LocalStore,
                                                          tmp_path: Path) -> None:
    assert not state.seed(None)
    assert not state.seed(tmp_path / "missing.params")
    assert state.pointer() is None and state.versions() == []


def test_a_version_that_was_not_promoted_is_kept_but_not_served(
    state: LocalStore, tmp_path: Path
) -> None:
    served = state.install(weights(tmp_path, 1), source="shipped")
    worse = state.add(weights(tmp_path, 2, "53.60"), source="trained", promoted=False,
                      reason="53.60 % < 99.00 % of the served weights")
    pointer = state.pointer()
    assert pointer is not None and pointer.version == served.version
    newest, oldest = state.versions()
    assert newest.version == worse and not newest.served and not newest.promoted
    assert newest.reason == "53.60 % < 99.00 % of the served weights"
    assert oldest.served


def test_serving_another_version_keeps_the_rollback(state: LocalStore,
                                                    tmp_path: Path) -> None:
    a = state.install(weights(tmp_path, 1)).version
    b = state.install(weights(tmp_path, 2)).version
    pointer = state.pointer()
    assert pointer is not None and (pointer.version, pointer.previous) == (b, a)
    back = state.serve(a)
    assert (back.version, back.previous) == (a, b)
    again = state.serve(a)
    assert (again.version, again.previous) == (a, b), "serving the served one changes nothing"


def test_unknown_versions_are_refused(state: LocalStore, tmp_path: Path) -> None:
    state.install(weights(tmp_path, 1))
    for bad in ("0123456789ab", "../../etc/passwd", "ABCDEF012345", ""):
        with pytest.raises(UnknownVersion):
            state.serve(bad)
    assert is_version("0123456789ab") and not is_version("0123456789abc")


def test_pruning_keeps_the_newest_and_never_the_served_or_the_rollback(
    state: LocalStore, tmp_path: Path
) -> None:
    first = state.install(weights(tmp_path, 1)).version
    second = state.install(weights(tmp_path, 2)).version
    state.serve(first)  # served: first; rollback: second
    later = [state.add(weights(tmp_path, n), source="trained") for n in range(3, 7)]
    state.serve(later[-1])  # served: the newest; rollback: first
    kept = {v.version for v in state.versions()}
    assert kept == {*later[-3:], first}, "keep=3 newest, plus the rollback"
    assert second not in kept
    assert not list(state.weights_dir.glob(f"{second}.*")), "its files are gone"


def test_versions_are_listed_newest_first(state: LocalStore, tmp_path: Path) -> None:
    made = [state.add(weights(tmp_path, n), source="trained") for n in range(1, 4)]
    assert [v.version for v in state.versions()] == made[::-1]
