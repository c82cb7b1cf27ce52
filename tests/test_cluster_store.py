"""What only a cluster's store does, against a real ``redis-server`` (killed and restarted
empty) and a shared weights directory: the durable pointer, serving on while Redis is away,
the lease's expiry and fencing, the pub/sub of swaps, and refusing bad locations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bench.services import RedisServer, redis_server
from nn_server.core.config import Config, ConfigError
from nn_server.core.locations import StoreLocation
from nn_server.store import cluster
from nn_server.store.base import StateError, StoreUnavailable
from nn_server.store.cluster import ClusterStore
from nn_server.store.lifecycle import TrainingLog
from tests.test_store import made


@pytest.fixture
def redis_live(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


def replica(server: RedisServer, tmp_path: Path, name: str) -> ClusterStore:
    location = StoreLocation(tmp_path / name, server.url, f"file://{tmp_path / 'shared'}", name)
    return ClusterStore(location, "lenet", keep=3)


def test_a_redis_restarted_empty_gets_the_pointer_back_from_the_store(
        redis_live: RedisServer, tmp_path: Path) -> None:
    one = replica(redis_live, tmp_path, "r1")
    served = one.install(made(tmp_path, 1))
    redis_live.kill()
    redis_live.start()  # empty: no persistence
    assert redis.Redis.from_url(redis_live.url).get("nn:lenet:pointer") is None
    two = replica(redis_live, tmp_path, "r2")
    cluster.Redis.of(redis_live.url).down_until = 0.0
    assert two.pointer() == served, "recovered from the durable copy"
    assert redis.Redis.from_url(redis_live.url).get("nn:lenet:pointer") is not None


def test_while_redis_is_away_reads_fall_back_and_changes_answer_503(
        redis_live: RedisServer, tmp_path: Path) -> None:
    store = replica(redis_live, tmp_path, "r1")
    first = store.install(made(tmp_path, 1))
    second = store.add(made(tmp_path, 2), source="trained")
    redis_live.kill()
    assert store.pointer() == first, "the durable copy answers"
    assert store.pointer_signature() is None, "nothing can move the pointer now"
    with pytest.raises(StoreUnavailable, match="does not answer"):
        store.serve(second)
    with pytest.raises(StoreUnavailable):
        store.status()
    assert store.pointer() == first, "nothing changed"
    redis_live.start()
    cluster.Redis.of(redis_live.url).down_until = 0.0  # as DOWN_S later
    assert store.serve(second).version == second, "back by itself"


def test_a_lease_not_renewed_expires_and_reads_as_a_dead_trainer(
        redis_live: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "LEASE_S", 0.3)
    one, two = replica(redis_live, tmp_path, "r1"), replica(redis_live, tmp_path, "r2")
    lease = one.try_lease()
    assert lease is not None
    lease.name(4242)
    TrainingLog(one, pid=4242)
    assert two.try_lease() is None, "one training cluster-wide"
    status = two.status()
    assert (status.state, status.pid, status.replica) == ("training", 4242, "r1")
    lease.close()  # the replica dies: nobody renews
    deadline = time.monotonic() + 10
    while two.lease_holder() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    status = two.status()
    assert status.state == "failed"
    assert "pid 4242 on replica r1" in (status.error or "") and "lease" in (status.error or "")
    again = two.try_lease()
    assert again is not None, "the next training starts on a survivor"
    again.release()
    again.close()


def test_a_trainer_that_lost_its_lease_installs_nothing(
        redis_live: RedisServer, tmp_path: Path) -> None:
    starter = replica(redis_live, tmp_path, "r1")
    served = starter.install(made(tmp_path, 1))
    lease = starter.try_lease()
    assert lease is not None
    trainer = replica(redis_live, tmp_path, "r1")
    adopted = trainer.adopt_lease(lease.token)
    adopted.close()  # its renewal stops (in one process, the starter's handle is this one)
    redis.Redis.from_url(redis_live.url).delete("nn:lenet:lease")  # expired...
    other = replica(redis_live, tmp_path, "r2").try_lease()  # ...and taken elsewhere
    assert other is not None
    with pytest.raises(StateError, match="lost the training lease"):
        trainer.install(made(tmp_path, 2))
    assert starter.pointer() == served, "the served version did not move"
    other.close()


def test_every_replica_hears_a_swap_at_once(redis_live: RedisServer, tmp_path: Path) -> None:
    one, two = replica(redis_live, tmp_path, "r1"), replica(redis_live, tmp_path, "r2")
    one.install(made(tmp_path, 1))
    second = one.add(made(tmp_path, 2), source="trained")

    async def hear() -> str:
        swaps = two.swaps()
        listening = asyncio.ensure_future(anext(swaps))
        watcher = redis.Redis.from_url(redis_live.url)
        deadline = time.monotonic() + 10
        while not dict(watcher.pubsub_numsub(cluster.SWAPS)).get(cluster.SWAPS.encode()):
            assert time.monotonic() < deadline, "never subscribed"
            await asyncio.sleep(0.02)
        await asyncio.to_thread(one.serve, second)
        heard = await asyncio.wait_for(listening, 5)
        await swaps.aclose()
        return heard

    assert asyncio.run(hear()) == "lenet"
    assert two.pointer() is not None and two.pointer().version == second  # type: ignore[union-attr]


@pytest.mark.parametrize(("environ", "words"), [
    ({"NN_STATE_URL": "mysql://db/1"}, "expected file://DIR or redis://HOST:PORT/DB"),
    ({"NN_STATE_URL": "redis://:5/0"}, "no host"),
    ({"NN_STATE_URL": "redis://h:x/0"}, "port is not a number"),
    ({"NN_STATE_URL": "redis://h/db"}, "database must be a number"),
    ({"NN_STATE_URL": "redis://h/0", "NN_WEIGHTS_URL": "s3://No_Such/x"}, "not an S3 bucket"),
    ({"NN_STATE_URL": "redis://h/0", "NN_WEIGHTS_URL": "ftp://x"}, "expected file://DIR"),
    ({"NN_WEIGHTS_URL": "file:///w"}, "set NN_STATE_URL=redis://"),
    ({"NN_STATE_URL": "redis://u:secret@h/0", "NN_WEIGHTS_URL": "file://rel"}, "ABSOLUTE"),
])
def test_a_wrong_location_is_refused_in_one_line(environ: dict[str, str], words: str,
                                                 tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"NN_STATE_DIR": str(tmp_path), **environ})
    message = str(raised.value)
    assert words in message and "\n" not in message and "secret" not in message


def test_an_unreachable_redis_or_bucket_is_one_line(tmp_path: Path) -> None:
    from bench.services import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    store = ClusterStore(StoreLocation(tmp_path, url, f"file://{tmp_path}/w", "r"), "lenet")
    with pytest.raises(StateError, match="cannot reach Redis") as raised:
        store.check()
    assert "\n" not in str(raised.value)
