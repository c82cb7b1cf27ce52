"""The ``Store`` interface as every backend must honour it (the local directory, and a
cluster's store against a real ``redis-server`` with its weights in a shared directory or
in moto's S3 server; a new backend joins ``BACKENDS``), the version record, the status's
one writer and the trainer's command line. ``tests/test_cluster_store.py`` has what only a
cluster does."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bench.services import redis_server, s3_server
from nn_server.core.files import weights_version
from nn_server.core.locations import StoreLocation
from nn_server.core.records import VersionRecord
from nn_server.store import Store, open_store
from nn_server.store.base import DamagedVersion, UnknownVersion
from nn_server.store.cluster import ClusterStore
from nn_server.store.lifecycle import STATUS_INTERVAL_S, TrainingLog, record_failure
from nn_server.store.local import LocalStore
from nn_server.store.status import Progress
from nn_server.training.command import TrainerCommand

BACKENDS = ("local", "redis+directory", "redis+s3")
BUCKET = "nn-server-tests"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with s3_server(BUCKET):
        yield f"s3://{BUCKET}"


def cluster_store(request: pytest.FixtureRequest, tmp_path: Path, weights: str) -> Store:
    """A replica's store on an emptied Redis, with its weights where ``weights`` says."""
    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    if weights == "s3":
        weights_url = f"{request.getfixturevalue('s3_url')}/{tmp_path.name}"
    else:
        weights_url = f"file://{tmp_path / 'shared'}"
    location = StoreLocation(tmp_path / "state", url, weights_url, "replica-1")
    return ClusterStore(location, "lenet", keep=2)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "state", "lenet", keep=2)
    return cluster_store(request, tmp_path, request.param.partition("+")[2])


def made(tmp_path: Path, n: int, accuracy: str = "99.00") -> Path:
    path = tmp_path / "made" / str(n) / "lenet.params"
    path.parent.mkdir(parents=True)
    path.write_bytes(f"weights {n}".encode())
    VersionRecord(network="lenet", accuracy=accuracy, datetime=f"2026-12-01 10:00:{n:02d}",
                  epochs=n).write(path)
    return path


def test_open_store_is_the_local_directory_by_default(tmp_path: Path) -> None:
    store = open_store(tmp_path, "lenet", keep=4)
    assert isinstance(store, LocalStore) and store.root == tmp_path / "lenet"
    assert store.keep == 4


def test_serving_moves_the_pointer_and_keeps_the_rollback(store: Store, tmp_path: Path) -> None:
    first = store.install(made(tmp_path, 1), "shipped")
    second = store.install(made(tmp_path, 2, "99.10"))
    assert (second.previous, second.accuracy) == (first.version, "99.10")
    back = store.serve(first.version)
    assert (back.version, back.previous) == (first.version, second.version)
    assert store.pointer() == back
    [newest, oldest] = store.versions()
    assert (newest.version, newest.source, newest.served) == (second.version, "trained", False)
    assert (oldest.source, oldest.served) == ("shipped", True)


def test_pruning_never_drops_the_served_version_or_its_rollback(store: Store,
                                                                tmp_path: Path) -> None:
    shipped = store.install(made(tmp_path, 1), "shipped").version
    store.install(made(tmp_path, 2))
    store.serve(shipped)  # the oldest is served again: it must survive any pruning
    for n in range(3, 6):
        store.add(made(tmp_path, n), source="trained", promoted=False, reason="worse")
    store.serve(shipped)
    kept = [v.version for v in store.versions()]
    rollback = weights_version(tmp_path / "made" / "2" / "lenet.params")
    assert kept[-2:] == [rollback, shipped], "the served one and its rollback stay"
    assert len(kept) == 4, "beside the two newest"


def test_a_version_keeps_its_exports_and_its_measured_precision(store: Store,
                                                               tmp_path: Path) -> None:
    weights = made(tmp_path, 1)
    VersionRecord.read(weights).measured({"float": "99.55", "int8": "99.54"}, "int8") \
        .write(weights)
    weights.with_suffix(".onnx").write_bytes(b"float model")
    weights.with_suffix(".int8.onnx").write_bytes(b"int8 model")
    version = store.install(weights).version
    kept = store.weights_of(version)
    assert kept.with_suffix(".onnx").read_bytes() == b"float model"
    assert kept.with_suffix(".int8.onnx").read_bytes() == b"int8 model"
    [listed] = store.versions()
    assert (listed.accuracies, listed.precision) == ({"float": "99.55", "int8": "99.54"},
                                                     "int8")
    unmeasured = store.install(made(tmp_path, 2, "98.70")).version
    [newest, _] = store.versions()
    assert (newest.version, newest.accuracies, newest.precision) == (
        unmeasured, {"float": "98.70"}, "float")


def test_unknown_and_damaged_versions_are_refused(store: Store, tmp_path: Path) -> None:
    version = store.install(made(tmp_path, 1), "shipped").version
    with pytest.raises(UnknownVersion):
        store.serve("0123456789ab")
    with pytest.raises(UnknownVersion):
        store.weights_of("../../etc/passwd")
    store.weights_of(version).write_bytes(b"truncated")
    assert not store.intact(version)
    with pytest.raises(DamagedVersion):
        store.serve(version)


def test_recovery_serves_the_version_before_damaged_weights(store: Store, tmp_path: Path) -> None:
    first = store.install(made(tmp_path, 1), "shipped").version
    second = store.install(made(tmp_path, 2)).version
    assert store.recover(None) is None, "all is well: nothing to say"
    store.weights_of(second).write_bytes(b"")
    said = store.recover(None)
    assert said is not None and first in said
    pointer = store.pointer()
    assert pointer is not None and pointer.version == first


def test_the_lease_is_exclusive_and_names_its_holder(store: Store) -> None:
    lease = store.try_lease()
    assert lease is not None and store.lease_holder() == 0, "taken, holder not named yet"
    lease.name(4242)
    assert store.lease_holder() == 4242 and store.trainer_running()
    adopted = store.adopt_lease(lease.token)  # as the trainer process takes it over
    lease.release()
    adopted.close()
    assert store.lease_holder() is None
    again = store.try_lease()
    assert again is not None, "released: the next training may start"
    again.close()


def test_the_lease_is_refused_while_held(tmp_path: Path) -> None:
    """Another process holds it (an flock is per open file, so the test opens its own)."""
    holder = LocalStore(tmp_path, "lenet").try_lease()
    assert holder is not None
    try:
        assert LocalStore(tmp_path, "lenet").try_lease() is None
    finally:
        holder.close()


def test_the_training_log_is_the_status_writer(store: Store) -> None:
    now = [0.0]
    log = TrainingLog(store, pid=77, clock=lambda: now[0])
    assert store.written_or_idle().stage == "starting"
    now[0] = STATUS_INTERVAL_S / 2
    log.progress(Progress.at(1, 2, 1, 100, 0.5, 0.9, 1.0))
    assert store.written_or_idle().progress is None, "too soon to write again"
    now[0] = STATUS_INTERVAL_S
    log.progress(Progress.at(1, 2, 2, 100, 0.5, 0.9, 1.0))
    written = store.written_or_idle()
    assert written.progress is not None and written.progress.batch == 2
    log.finish(VersionRecord(accuracy="99.10", datetime="2026-12-01 10:00:00"),
               "0123456789ab", promoted=True, reason=None)
    done = store.written_or_idle()
    assert (done.state, done.accuracy, done.version) == ("idle", "99.10", "0123456789ab")


def test_a_failure_is_recorded_for_a_trainer_that_could_not(store: Store) -> None:
    TrainingLog(store, pid=77)
    record_failure(store, "the trainer process was killed by SIGKILL")
    status = store.status()
    assert status.state == "failed" and "SIGKILL" in (status.error or "")


def test_a_training_after_one_that_died_shows_the_new_trainer(store: Store) -> None:
    TrainingLog(store, pid=77)  # then it dies without a word, and its lease goes
    assert store.status().state == "failed"
    lease = store.try_lease()  # the next training (in a cluster, maybe on another replica)
    assert lease is not None
    lease.name(4242)
    try:
        status = store.status()
        assert (status.state, status.stage, status.pid) == ("training", "starting", 4242)
        assert status.replica == store.replica
    finally:
        lease.release()
        lease.close()


def test_records_keep_what_they_do_not_know(tmp_path: Path) -> None:
    path = tmp_path / "w.params"
    path.with_suffix(".json").write_text(json.dumps(
        {"accuracy": "99.5", "epochs": "ten", "from_the_future": [1, 2]}))
    record = VersionRecord.read(path)
    assert record.accuracy == "99.5" and record.epochs is None, "a wrong type reads unknown"
    assert record.to_json()["from_the_future"] == [1, 2]
    kept = record.kept(added="2026-12-01 10:00:00", source="seed")
    assert kept.to_json()["reason"] is None and kept.to_json()["promoted"] is True
    assert VersionRecord.read(tmp_path / "missing.params") == VersionRecord()


def test_the_trainer_command_line_round_trips(tmp_path: Path) -> None:
    command = TrainerCommand(network="lenet", state_dir=tmp_path, lease="7",
                             data_dir=tmp_path / "data", epochs=3, train_subset=100,
                             promote="always", keep=5)
    argv = command.argv()
    assert argv[:3] == [sys.executable, "-m", "nn_server.training.trainer"]
    assert TrainerCommand.parse(argv[3:], ["lenet"]) == command
    bare = TrainerCommand(network="lenet", state_dir=tmp_path, lease="7")
    assert TrainerCommand.parse(bare.argv()[3:], ["lenet"]) == bare
