"""``GET /metrics``: Prometheus text, with every worker's requests summed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LiveServer, basic_auth, start_server
from tests.server.conftest import IMAGES, b64, call

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

CLASSIFY = 40
ROUNDS = 10


@pytest.fixture(scope="module")
def two_workers() -> Iterator[LiveServer]:
    with start_server("127.0.0.1:0", "--workers", "2") as live:
        yield live


def samples(text: str) -> Samples:
    """(sample name, labels) → value, parsed with prometheus_client's own parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


async def scrape(http: aiohttp.ClientSession, live: LiveServer) -> str:
    async with http.get(live.url + "/metrics",
                        headers={"Authorization": basic_auth(*live.auth)}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        return await resp.text()


async def test_metrics_sum_every_worker(two_workers: LiveServer,
                                        http: aiohttp.ClientSession) -> None:
    image = b64(IMAGES[0])
    workers: set[str] = set()
    sent = 0
    # Which worker accepts a connection is up to the kernel: keep going until both have
    # answered, so that the sum really spans processes.
    for _ in range(ROUNDS):
        async with aiohttp.ClientSession() as fresh:  # new connections, maybe another worker
            answers = await asyncio.gather(*(
                call(fresh, two_workers, "POST", "/lenet/classify", json={"image": image})
                for _ in range(CLASSIFY)
            ))
        sent += CLASSIFY
        assert all(status == 200 for status, _, _ in answers)
        workers |= {resp.headers["X-NN-Worker"] for _, _, resp in answers}
        if len(workers) == 2:
            break
    assert len(workers) == 2, "both workers should have answered some requests"
    await call(http, two_workers, "GET", "/list_nn", auth=False)  # 401
    await call(http, two_workers, "GET", "/no/such/route")  # 404

    # Counters are written to shared files as they happen: a scrape sees them at once.
    found = samples(await scrape(http, two_workers))
    assert value(found, "nn_requests_total", route="/lenet/classify", method="POST",
                 status="200") == sent, "the sum holds every worker's"
    assert value(found, "nn_requests_total", route="/list_nn", method="GET",
                 status="401") == 1
    assert value(found, "nn_requests_total", route="unmatched", method="GET",
                 status="404") == 1

    buckets = sorted(
        (float(dict(labels)["le"]), count) for (name, labels), count in found.items()
        if name == "nn_request_duration_seconds_bucket"
        and dict(labels)["route"] == "/lenet/classify"
    )
    counts = [count for _, count in buckets]
    assert counts == sorted(counts), "histogram buckets are cumulative"
    assert counts[-1] == value(found, "nn_request_duration_seconds_count",
                               route="/lenet/classify") == sent
    assert value(found, "nn_request_duration_seconds_sum", route="/lenet/classify") > 0

    assert value(found, "nn_batch_size_count", network="lenet") >= 1
    assert value(found, "nn_batch_size_sum", network="lenet") == sent
    assert value(found, "nn_training", network="lenet") == 0
    assert value(found, "nn_state_up") == 1
    assert any(name == "nn_weights_info" and len(dict(labels)["version"]) == 12
               for name, labels in found)
    assert value(found, "nn_workers", state="expected") == 2
    assert value(found, "nn_workers", state="live") == 2
    assert value(found, "nn_worker_restarts_total") == 0


async def test_metrics_need_auth_and_ignore_accept(two_workers: LiveServer,
                                                   http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, two_workers, "GET", "/metrics", auth=False)
    assert status == 401 and "error" in body
    headers = {"Authorization": basic_auth(*two_workers.auth),
               "Accept": "application/openmetrics-text; version=1.0.0, text/plain;q=0.5"}
    async with http.get(two_workers.url + "/metrics", headers=headers) as resp:
        assert resp.status == 200
        assert "# TYPE nn_requests_total counter" in await resp.text()
