"""A third network joins with no change to the project: registered in-process it is
served and trained like the others, and on a live server it answers 503 for itself alone
until it has weights, while LeNet serves on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sanic import Sanic
from sanic_testing.testing import SanicTestClient

from nn_server import networks
from nn_server.core.config import Config
from nn_server.store.local import LocalStore
from nn_server.training.run import TrainingJob, train_network
from nn_server.web.app import create_app
from tests.conftest import (
    AUTH_HEADER,
    DATA_DIR,
    LISTED,
    ROOT,
    SHIPPED,
    LiveServer,
    start_server,
)
from tests.server.conftest import b64, call, wait_for
from tests.throwaway import ENTRY, Tiny

SAMPLE = ROOT / "images" / "3_pen.bmp"


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(networks.EXTRA_ENV, ENTRY)  # as the trainer process reads it


def test_registered_in_process_it_trains_and_serves(
    registered: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = TrainingJob(network="tiny", out_dir=tmp_path / "out", data_dir=DATA_DIR,
                      train_subset=3000, allow_download=False)
    record = train_network(job).to_json()
    assert record["network"] == "tiny" and record["dataset"] == "MNIST"
    assert float(record["accuracy"]) > 50
    assert record["recipe"] == dataclasses.asdict(Tiny.recipe)

    monkeypatch.setattr(Sanic, "test_mode", True)  # allows a second app of the same name
    assert LocalStore(tmp_path / "state", "tiny").seed(tmp_path / "out" / "tiny.params")
    app = create_app(Config(state_dir=tmp_path / "state", extra_networks=(ENTRY,)))
    client = SanicTestClient(app)
    auth = {"Authorization": AUTH_HEADER}
    _, listed = client.get("/list_nn", headers=auth)
    assert "Tiny url:/tiny" in listed.json["text"]
    _, about = client.get("/tiny/about", headers=auth)
    assert about.json["labels"] == list(Tiny.labels)
    _, answer = client.post("/tiny/classify", json={"image": b64(SAMPLE)}, headers=auth)
    assert answer.status == 200, answer.json
    assert answer.json["label"] in Tiny.labels and "number" not in answer.json
    assert answer.json["weights_version"] == record["weights_version"]
    _, batch = client.post("/tiny/classify", json={"images": [b64(SAMPLE)] * 3}, headers=auth)
    assert batch.json["labels"] == [answer.json["label"]] * 3 and "numbers" not in batch.json
    _, described = client.get("/openapi.json")
    assert "/tiny/classify" in described.json["paths"]


def test_a_bad_registry_entry_is_named() -> None:
    with pytest.raises(networks.RegistryError, match=r"tests\.nowhere:Net"):
        networks.load("tests.nowhere:Net")
    with pytest.raises(networks.RegistryError, match=r"not a nn_server\.networks\.Network"):
        networks.load("tests.conftest:LiveServer")


@pytest.fixture(scope="module")
def plugged() -> LiveServer:
    # LeNet on its shipped weights: the test weights are too weak to promise what a sample reads
    env = {networks.EXTRA_ENV: ENTRY, "NN_SEED_WEIGHTS": str(SHIPPED)}
    with start_server("127.0.0.1:0", "--workers", "2", env=env, ready_when="lenet") as live:
        yield live  # type: ignore[misc]


async def test_without_weights_it_answers_503_alone_then_trains(plugged: LiveServer,
                                                                http) -> None:
    live = plugged
    status, ready, _ = await call(http, live, "GET", "/ready")
    assert status == 503 and ready["ready"] is False and "tiny" in ready["error"]
    assert ready["networks"]["tiny"] == {"ready": False, "weights_version": None}
    assert ready["networks"]["lenet"]["ready"] is True
    assert "no weights" in live.output(), "the server said so at start"

    status, body, _ = await call(http, live, "POST", "/tiny/classify",
                                 json={"image": b64(SAMPLE)})
    assert status == 503 and "no weights" in body["error"]
    status, body, _ = await call(http, live, "POST", "/lenet/classify",
                                 json={"image": b64(SAMPLE)})
    assert status == 200 and body["number"] == "3"
    status, body, _ = await call(http, live, "GET", "/list_nn")
    assert body["text"] == [*LISTED, "Tiny url:/tiny"]

    status, body, _ = await call(http, live, "GET", "/tiny/train")
    assert status == 200, body

    async def trained() -> bool:
        _, current, _ = await call(http, live, "GET", "/tiny/train/status")
        assert current["state"] != "failed", current
        return current["state"] == "idle" and current["weights_version"] is not None

    await wait_for(trained)

    async def both_workers_ready() -> bool:
        seen = {}
        for _ in range(20):  # a new connection each time: the kernel picks the worker
            code, _, response = await call(http, live, "GET", "/ready",
                                              headers={"Connection": "close"})
            seen[response.headers["X-NN-Worker"]] = code
        return len(seen) == 2 and set(seen.values()) == {200}

    await wait_for(both_workers_ready, timeout=30)
    status, body, _ = await call(http, live, "POST", "/tiny/classify",
                                 json={"image": b64(SAMPLE)})
    assert status == 200 and body["label"] in Tiny.labels


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/nope/about"), ("GET", "/nope/train/status"), ("POST", "/nope/classify"),
    ("GET", "/nope/versions"), ("GET", "/nope/samples"), ("POST", "/nope/train"),
])
def test_an_unknown_network_is_a_404_that_lists_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)  # allows a second app of the same name
    client = SanicTestClient(create_app(Config(state_dir=tmp_path / "state")))
    _, answer = client.request(path, http_method=method.lower(),
                               headers={"Authorization": AUTH_HEADER}, json={})
    assert answer.status == 404, answer.body
    assert answer.json["status"] == 404
    assert "'nope'" in answer.json["error"] and "lenet, fashion" in answer.json["error"]
