"""``GET /metrics``: Prometheus text, with every worker's requests summed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import aiohttp
import pytest

from nn_server.metrics import FLUSH_S
from tests.conftest import LiveServer, basic_auth, start_server
from tests.server.conftest import IMAGES, b64, call

CLASSIFY = 40
ROUNDS = 10


@pytest.fixture(scope="module")
def two_workers() -> Iterator[LiveServer]:
    with start_server("127.0.0.1:0", "--workers", "2") as live:
        yield live


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value, for every sample line of the exposition."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


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
    await asyncio.sleep(FLUSH_S + 0.5)  # every worker has published since

    found = samples(await scrape(http, two_workers))
    classify = 'route="/lenet/classify",method="POST",status="200"'
    assert found[f"nn_requests_total{{{classify}}}"] == sent, "the sum holds every worker's"
    assert found['nn_requests_total{route="/list_nn",method="GET",status="401"}'] == 1
    assert found['nn_requests_total{route="unmatched",method="GET",status="404"}'] == 1

    route = 'route="/lenet/classify"'
    buckets = [v for k, v in found.items()
               if k.startswith(f"nn_request_duration_seconds_bucket{{{route}")]
    assert buckets == sorted(buckets), "histogram buckets are cumulative"
    assert buckets[-1] == found[f"nn_request_duration_seconds_count{{{route}}}"] == sent
    assert found[f"nn_request_duration_seconds_sum{{{route}}}"] > 0

    assert found['nn_batch_size_count{network="lenet"}'] >= 1
    assert found['nn_batch_size_sum{network="lenet"}'] == sent
    assert found['nn_training{network="lenet"}'] == 0
    assert any(re.fullmatch(r'nn_weights_info\{network="lenet",version="\w{12}"\}', k)
               for k in found)


async def test_metrics_need_auth_and_ignore_accept(two_workers: LiveServer,
                                                   http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, two_workers, "GET", "/metrics", auth=False)
    assert status == 401 and "error" in body
    headers = {"Authorization": basic_auth(*two_workers.auth),
               "Accept": "application/openmetrics-text; version=1.0.0, text/plain;q=0.5"}
    async with http.get(two_workers.url + "/metrics", headers=headers) as resp:
        assert resp.status == 200
        assert "# TYPE nn_requests_total counter" in await resp.text()
