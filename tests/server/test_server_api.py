"""Every endpoint of docs/api.md over real HTTP, in development and production mode."""

from __future__ import annotations

import asyncio

import pytest

from nn_server.networks import load_registry
from tests.conftest import LISTED, LiveServer
from tests.server.conftest import IMAGES, b64, call

REGISTRY = load_registry()

MODES = ["server", "prod_server"]
DIGITS = {str(d) for d in range(10)}


@pytest.fixture(params=MODES)
def live(request: pytest.FixtureRequest) -> LiveServer:
    server: LiveServer = request.getfixturevalue(request.param)
    return server


async def test_health_needs_no_auth(live: LiveServer, http) -> None:
    status, body, _ = await call(http, live, "GET", "/health", auth=False)
    assert (status, body) == (200, {"status": "ok"})


async def test_ready_reports_the_weights_version(live: LiveServer, http) -> None:
    status, body, _ = await call(http, live, "GET", "/ready")
    assert status == 200
    assert body["ready"] is True
    lenet = body["networks"]["lenet"]
    assert lenet["ready"] is True
    assert isinstance(lenet["weights_version"], str) and len(lenet["weights_version"]) == 12


async def test_list_nn(live: LiveServer, http) -> None:
    status, body, _ = await call(http, live, "GET", "/list_nn")
    assert status == 200
    assert body["text"] == LISTED and LISTED[0] == "LeNet url:/lenet"
    assert body["networks"] == [{"name": cls.name, "title": cls.title, "url": f"/{cls.name}"}
                                for cls in REGISTRY.values()]


async def test_about(live: LiveServer, http) -> None:
    status, body, _ = await call(http, live, "GET", "/lenet/about")
    assert status == 200
    assert isinstance(body["text"], str) and "LeNet" in body["text"]
    assert body["labels"] == [str(d) for d in range(10)]


async def test_status_has_the_seed_keys_as_strings(live: LiveServer, http) -> None:
    status, body, _ = await call(http, live, "GET", "/lenet/train/status")
    assert status == 200
    assert isinstance(body["accuracy"], str) and float(body["accuracy"]) > 10
    assert isinstance(body["datetime"], str) and len(body["datetime"]) == 19
    assert body["state"] in {"idle", "training", "failed"}
    assert len(body["weights_version"]) == 12


@pytest.mark.parametrize("image", IMAGES, ids=[p.name for p in IMAGES])
async def test_classify_every_sample_image(server: LiveServer, http, image) -> None:
    status, body, _ = await call(http, server, "POST", "/lenet/classify",
                                 json={"image": b64(image)})
    assert status == 200, body
    assert body["number"] in DIGITS
    assert len(body["probabilities"]) == 10
    assert abs(sum(body["probabilities"]) - 1) < 1e-3
    assert 0 < body["confidence"] <= 1
    _, ready, _ = await call(http, server, "GET", "/ready")
    assert body["weights_version"] == ready["networks"]["lenet"]["weights_version"]
    assert body["label"] == body["number"] and body["index"] == int(body["number"])


async def test_classify_in_production_mode(prod_server: LiveServer, http) -> None:
    status, body, _ = await call(http, prod_server, "POST", "/lenet/classify",
                                 json={"image": b64(IMAGES[0])})
    assert status == 200, body
    assert body["number"] in DIGITS


async def test_classify_batch_reports_each_image(live: LiveServer, http) -> None:
    images = [b64(IMAGES[0]), b64(b"not an image"), b64(IMAGES[1])]
    status, body, _ = await call(http, live, "POST", "/lenet/classify", json={"images": images})
    assert status == 200, body
    assert body["numbers"][1] is None and body["numbers"][0] in DIGITS
    assert body["labels"] == body["numbers"]
    assert body["results"][1]["status"] == 400 and "error" in body["results"][1]
    assert len(body["results"][2]["probabilities"]) == 10
    single = await call(http, live, "POST", "/lenet/classify", json={"image": images[0]})
    assert single[1]["number"] == body["numbers"][0]


async def test_access_log_has_a_line_per_request_and_no_credentials(
    prod_server: LiveServer, http
) -> None:
    marker = "/list_nn?access-log-check"
    status, _, _ = await call(http, prod_server, "GET", marker)
    assert status == 200
    await wait_for_line(prod_server, marker)
    line = next(x for x in prod_server.output().splitlines() if marker in x)
    assert " 200 " in line and "GET" in line
    assert "dGVzdF9ubjpsZW5ldA" not in prod_server.output() and "lenet " not in line


async def wait_for_line(live: LiveServer, text: str) -> None:
    for _ in range(50):
        if text in live.output():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in the server's output")


async def test_reading_the_status_writes_nothing(live: LiveServer, http) -> None:
    def tree() -> list[tuple[str, int]]:
        return sorted((str(p.relative_to(live.state_dir)), p.stat().st_mtime_ns)
                      for p in live.state_dir.rglob("*") if "metrics" not in p.parts)

    before = tree()
    for _ in range(10):
        status, _, _ = await call(http, live, "GET", "/lenet/train/status")
        assert status == 200
    assert tree() == before
