"""The store of a cluster: replicas on many machines share coordination state in Redis and
the weights in an objects store (``nn_server.store.objects``: a shared directory or S3).

    Redis (NN_STATE_URL)                     the objects store (NN_WEIGHTS_URL)
    nn:<net>:lease         the training      <net>/weights/<v>.params|.json|.onnx|.int8.onnx
                           lease (SET NX PX)                 immutable, written once
    nn:<net>:status        the status        <net>/current.json  the served pointer,
    nn:<net>:pointer       the served pointer                    durable
    nn:<net>:pointer-lock  serialises moves
    nn:swaps               pub/sub: "<net>" each time a pointer moves

The lease is a key that expires unless its holder renews it: the trainer renews it every
``RENEW_S`` from a thread, so a trainer whose replica dies loses it within ``LEASE_S``
and the next training may start on a survivor. It holds a random token, and every write a
trainer makes is *fenced* by it (a Lua script writes only while the lease holds that token):
a trainer that lost its lease can never install weights or overwrite a newer status. The
same replica's workers also share the local ``train.lock`` (``LocalStore``), so stopping a
server stops the trainers it started, as on one machine.

Redis is coordination, not the only copy: the pointer is written to the objects store too,
and read back from there when Redis has none (it restarted empty) or does not answer. While
Redis is unreachable, workers keep serving what they have; anything that reads or changes
the state raises ``StoreUnavailable`` (503) at once, without waiting on Redis each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import redis
import redis.asyncio

from nn_server.core.config import KEEP_VERSIONS
from nn_server.core.files import DATETIME_FORMAT
from nn_server.core.locations import StoreLocation, redact
from nn_server.core.records import VersionRecord
from nn_server.store.base import (
    Kept,
    Lease,
    Pointer,
    StateError,
    Store,
    StoreUnavailable,
    UnknownVersion,
    is_version,
)
from nn_server.store.local import EXPORTS, SUFFIXES, FileLease, LocalStore
from nn_server.store.objects import Objects, open_objects
from nn_server.store.status import TrainingStatus

log = logging.getLogger("nn_server")

LEASE_S = 10.0
"""A lease not renewed for this long is gone (the issue's bound is 30 s)."""
RENEW_S = 2.0
POINTER_LOCK_S = 10.0
DOWN_S = 2.0
"""After Redis fails to answer, calls fail at once for this long instead of each waiting
on a connection (a worker's event loop must not stall while Redis is away)."""
VERDICT_RETRY_S = 30.0
"""How long a trainer retries writing its verdict while Redis is away."""
SWAPS = "nn:swaps"

# Lua: compare-and-act on the lease's token, atomically in Redis.
RENEW = """
local held = redis.call('GET', KEYS[1])
if not held then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if cjson.decode(held)['token'] == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""
"""Renew the lease held with a token, or take it back where Redis lost it (restarted empty)."""
RENAME = """
local held = redis.call('GET', KEYS[1])
if held and cjson.decode(held)['token'] == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""
RELEASE = """
local held = redis.call('GET', KEYS[1])
if held and cjson.decode(held)['token'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
FENCED_SET = """
if ARGV[2] ~= '' then
  local held = redis.call('GET', KEYS[2])
  if held and cjson.decode(held)['token'] ~= ARGV[2] then return 0 end
  if not held and ARGV[3] == 'strict' then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
"""Write KEYS[1] unless the writer's lease (token ARGV[2]; '' for a user's request) is held
by someone else; ``strict``: nor when no one holds it."""
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Redis:
    """One process's connection to a cluster's Redis, shared by its networks' stores, that
    fails fast while Redis is away and reconnects by itself when it is back."""

    _opened: ClassVar[dict[str, Redis]] = {}

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=0.25, socket_timeout=1.0, retry_on_timeout=False,
            health_check_interval=15)
        self.down_until = 0.0
        self.scripts = {name: self.client.register_script(source) for name, source in (
            ("renew", RENEW), ("rename", RENAME), ("release", RELEASE),
            ("fenced_set", FENCED_SET), ("unlock", UNLOCK))}

    @classmethod
    def of(cls, url: str) -> Redis:
        if url not in cls._opened:
            cls._opened[url] = cls(url)
        return cls._opened[url]

    def unavailable(self, exc: Exception | None = None) -> StoreUnavailable:
        why = f": {exc}" if exc else ""
        return StoreUnavailable(
            f"the cluster's state ({redact(self.url)}) does not answer{why}; serving goes "
            "on with the weights loaded, try this again shortly")

    def call(self, command: str, *args: Any, **kwargs: Any) -> Any:
        """``command`` on Redis; raises ``StoreUnavailable`` when it does not answer."""
        return self._guarded(getattr(self.client, command), *args, **kwargs)

    def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """One of the Lua scripts above, likewise."""
        return self._guarded(self.scripts[name], keys=keys, args=args)

    def _guarded(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self.down_until:
            raise self.unavailable()
        try:
            return action(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.down_until = time.monotonic() + DOWN_S
            raise self.unavailable(exc) from None

    def check(self) -> None:
        """Raise ``StateError`` with one line unless Redis answers."""
        try:
            self.client.ping()
        except redis.AuthenticationError as exc:
            raise StateError(f"NN_STATE_URL={redact(self.url)}: Redis refused the "
                             f"credentials: {exc}") from None
        except redis.RedisError as exc:
            raise StateError(f"NN_STATE_URL={redact(self.url)}: cannot reach Redis: {exc}"
                             ) from None


class RedisLease(Lease):
    """The cluster's lease (a Redis key holding a token), with this replica's local
    ``train.lock`` beside it; in the trainer, renewed by a thread until released."""

    def __init__(self, store: ClusterStore, token: str, local: FileLease, info: dict[str, Any]
                 ) -> None:
        self.store = store
        self.secret = token
        self.local = local
        self.info = info
        self.token = f"{local.token}:{token}"
        self.pass_fds = local.pass_fds
        self.stop = threading.Event()
        self.renewer: threading.Thread | None = None

    def value(self) -> str:
        return json.dumps({**self.info, "token": self.secret})

    def name(self, pid: int | None) -> None:
        self.info["pid"] = pid or 0
        self.local.name(pid)
        if not self.store.redis.script("rename", [self.store.key("lease")],
                                       [self.secret, self.value()]):
            raise StateError(f"{self.store.network}: the training lease was lost")

    def release(self) -> None:
        self.stop.set()
        self.local.release()
        with contextlib.suppress(StoreUnavailable):  # it expires by itself
            self.store.redis.script("release", [self.store.key("lease")], [self.secret])

    def close(self) -> None:
        self.stop.set()
        self.local.close()

    def renew_forever(self) -> None:
        """In the trainer: keep the lease; SIGTERM this process (it records 'failed') if
        another trainer holds it now, so that it stops working on a result it cannot
        install. While Redis is away there is nothing to renew; when it is back, the lease
        is renewed or, if Redis lost it, taken back."""
        self.renewer = threading.Thread(target=self._renew, name="nn-lease", daemon=True)
        self.renewer.start()

    def _renew(self) -> None:
        while not self.stop.wait(RENEW_S):
            try:
                held = self.store.redis.script(
                    "renew", [self.store.key("lease")],
                    [self.secret, self.value(), int(LEASE_S * 1000)])
            except StoreUnavailable:
                continue
            except Exception:  # a bug must not kill the renewal silently
                log.exception("could not renew the training lease")
                continue
            if not held:
                log.error("%s: another trainer holds the training lease now; stopping",
                          self.store.network)
                self.store.lost = True
                os.kill(os.getpid(), signal.SIGTERM)
                return


class ClusterStore(Store):
    """One network's store in a cluster (``NN_STATE_URL=redis://...``)."""

    def __init__(self, location: StoreLocation, network: str, keep: int = KEEP_VERSIONS,
                 ) -> None:
        super().__init__(network, keep)
        if location.state_url is None:
            raise ValueError("a cluster store needs NN_STATE_URL")
        self.location = location
        self.replica = location.replica
        self.redis = Redis.of(location.state_url)
        self.objects: Objects = open_objects(location.weights)
        self.local = LocalStore(location.state_dir, network, keep)
        self.cache = location.state_dir / network / "cache"
        self.fence = ""
        """The trainer's lease token once it adopted the lease: its writes are fenced."""
        self.lost = False

    def key(self, name: str) -> str:
        return f"nn:{self.network}:{name}"

    def object_key(self, version: str, suffix: str) -> str:
        return f"{self.network}/weights/{version}{suffix}"

    @property
    def pointer_key(self) -> str:
        return f"{self.network}/current.json"

    @property
    def pointer_location(self) -> str:
        return f"{self.key('pointer')} in {redact(self.redis.url)}"

    def scratch(self) -> Path:
        return self.local.scratch()

    # -- versions -------------------------------------------------------------------------

    def weights_of(self, version: str) -> Path:
        if not is_version(version):
            raise UnknownVersion(version)
        key = self.object_key(version, ".params")
        shared = self.objects.local(key)
        if shared is not None:  # a shared directory: read in place
            if not shared.is_file():
                raise UnknownVersion(version)
            return shared
        cached = self.cache / f"{version}.params"
        if cached.is_file():  # objects are immutable: a cached copy is never stale
            return cached
        # The record and the exports first: a complete .params means all is here.
        for suffix in (".json", *EXPORTS):
            self.objects.download(self.object_key(version, suffix),
                                  cached.with_suffix(suffix))
        if not self.objects.download(key, cached):
            raise UnknownVersion(version)
        return cached

    def onnx_of(self, version: str) -> Path:
        return self.weights_of(version).with_suffix(".onnx")

    def _put(self, version: str, weights: Path, record: VersionRecord) -> None:
        for suffix in (".params", *EXPORTS):
            path, key = weights.with_suffix(suffix), self.object_key(version, suffix)
            if path.is_file() and not self.objects.exists(key):
                self.objects.put(key, path.read_bytes())
        # The record last: a version is listed once its record is there.
        # With its order among versions added in the same second (S3 lists whole seconds).
        data = {**record.to_json(), "added_ns": time.time_ns()}
        self.objects.put(self.object_key(version, ".json"), json.dumps(data, indent=2).encode())

    def _kept(self) -> list[Kept]:
        listed = self.objects.listed(f"{self.network}/weights/")
        kept = []
        for key, written in listed.items():
            name = key.rsplit("/", 1)[-1]
            version, _, suffix = name.partition(".")
            if suffix != "json" or not is_version(version) \
                    or self.object_key(version, ".params") not in listed:
                continue
            record = self._record(version, key)
            order = record.to_json().get("added_ns")
            kept.append(Kept(version, record, order if isinstance(order, int) else written))
        return kept

    def _record(self, version: str, key: str) -> VersionRecord:
        cached = self.cache / f"{version}.json"
        if not cached.is_file() and self.objects.local(key) is None:
            self.objects.download(key, cached)
        return VersionRecord.read(self.objects.local(key) or cached)

    def _remove(self, version: str) -> None:
        # The record first, so that a half-removed version is no longer listed.
        for suffix in (".json", ".params", *EXPORTS):
            self.objects.delete(self.object_key(version, suffix))
        for suffix in SUFFIXES:
            (self.cache / f"{version}{suffix}").unlink(missing_ok=True)

    # -- the pointer ----------------------------------------------------------------------

    def pointer(self) -> Pointer | None:
        text = self._pointer_text()
        return None if text is None else Pointer.parse(text)

    def _pointer_text(self) -> str | None:
        """The pointer as Redis holds it; where Redis has none (it restarted empty), the
        durable copy, put back into Redis; where Redis does not answer, the durable copy."""
        try:
            text = self.redis.call("get", self.key("pointer"))
        except StoreUnavailable:
            durable = self.objects.get(self.pointer_key)
            return durable.decode() if durable else None
        if text is not None:
            return str(text.decode())
        durable = self.objects.get(self.pointer_key)
        if durable is None:
            return None
        self.redis.call("set", self.key("pointer"), durable, nx=True)
        log.info("%s: the served pointer came back from %s", self.network, self.objects.url)
        return durable.decode()

    def pointer_signature(self) -> str | None:
        """The pointer's text (one GET): None while Redis does not answer, since nothing
        can move the pointer then."""
        try:
            text = self.redis.call("get", self.key("pointer"))
        except StoreUnavailable:
            return None
        return str(text.decode()) if text is not None else self._pointer_text()

    def _has_pointer(self) -> bool:
        return bool(self.redis.call("exists", self.key("pointer"))) \
            or self.objects.exists(self.pointer_key)

    def _write_pointer(self, pointer: Pointer | None) -> None:
        if pointer is None:
            self.redis.call("delete", self.key("pointer"))
            self.objects.delete(self.pointer_key)
            return
        text = pointer.to_text()
        # Fenced: a trainer that lost its lease installs nothing. Then the durable copy, and
        # only then does every replica hear of it.
        if not self.redis.script("fenced_set", [self.key("pointer"), self.key("lease")],
                                 [text, self.fence, "strict"]):
            raise StateError(f"{self.network}: this trainer lost the training lease; its "
                             "weights are kept but not served")
        self.objects.put(self.pointer_key, text.encode())
        self.redis.call("publish", SWAPS, self.network)

    @contextlib.contextmanager
    def _moving_pointer(self) -> Iterator[None]:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + POINTER_LOCK_S
        while not self.redis.call("set", self.key("pointer-lock"), token, nx=True,
                                  px=int(POINTER_LOCK_S * 1000)):
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"{self.network}: the served pointer stayed locked "
                                       f"for {POINTER_LOCK_S:.0f} s; try again")
            time.sleep(0.02)
        try:
            yield
        finally:
            with contextlib.suppress(StoreUnavailable):  # it expires by itself
                self.redis.script("unlock", [self.key("pointer-lock")], [token])

    async def swaps(self) -> AsyncIterator[str]:
        """Every pointer move in the cluster, from Redis's pub/sub; after a lost connection,
        a reconnection yields every network once (moves may have been missed)."""
        client = redis.asyncio.Redis.from_url(self.redis.url, socket_connect_timeout=1)
        missed = False
        try:
            while True:
                try:
                    async with client.pubsub() as pubsub:
                        await pubsub.subscribe(SWAPS)
                        if missed:
                            yield "*"
                        missed = False
                        async for message in pubsub.listen():
                            if message.get("type") == "message":
                                yield bytes(message["data"]).decode()
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    missed = True
                    await asyncio.sleep(DOWN_S)
        finally:
            await client.aclose()

    # -- status and lease -----------------------------------------------------------------

    def written_status(self) -> TrainingStatus | None:
        try:
            wrapped = json.loads(self.redis.call("get", self.key("status")) or "null")
            return TrainingStatus.from_json(wrapped["status"]) if wrapped else None
        except (ValueError, TypeError, KeyError):
            return None

    def write_status(self, status: TrainingStatus) -> None:
        text = json.dumps({"written": time.strftime(DATETIME_FORMAT),
                           "status": status.to_json()})
        deadline = time.monotonic() + (0 if status.is_training else VERDICT_RETRY_S)
        while True:
            try:
                if not self.redis.script("fenced_set", [self.key("status"), self.key("lease")],
                                         [text, self.fence, "lenient"]):
                    raise StateError(f"{self.network}: this trainer lost the training lease")
                return
            except StoreUnavailable:
                if status.is_training:
                    return  # progress: the next one will do
                if time.monotonic() > deadline:
                    raise
                time.sleep(DOWN_S)

    def _status_stamp(self) -> str:
        try:
            wrapped = json.loads(self.redis.call("get", self.key("status")) or "{}")
            return str(wrapped["written"])
        except (ValueError, TypeError, KeyError):
            return time.strftime(DATETIME_FORMAT)

    def _lease(self) -> dict[str, Any] | None:
        try:
            held = json.loads(self.redis.call("get", self.key("lease")) or "null")
        except ValueError:
            return None
        return held if isinstance(held, dict) else None

    def try_lease(self) -> RedisLease | None:
        local = self.local.try_lease()  # this replica's trainers, for stop_trainers
        if local is None:
            return None
        token = uuid.uuid4().hex
        info = {"pid": 0, "replica": self.replica, "taken": time.strftime(DATETIME_FORMAT)}
        lease = RedisLease(self, token, local, info)
        try:
            taken = self.redis.call("set", self.key("lease"), lease.value(), nx=True,
                                    px=int(LEASE_S * 1000))
        except BaseException:
            local.release()
            local.close()
            raise
        if not taken:
            local.release()
            local.close()
            return None
        return lease

    def adopt_lease(self, token: str) -> RedisLease:
        local_token, _, secret = token.partition(":")
        local = self.local.adopt_lease(local_token)
        held = self._lease() or {}
        info = {key: held.get(key) for key in ("pid", "replica", "taken")}
        lease = RedisLease(self, secret, local, info)
        if held.get("token") != secret or not self.redis.script(
                "renew", [self.key("lease")], [secret, lease.value(), int(LEASE_S * 1000)]):
            raise StateError(f"not holding {self.key('lease')} through this token")
        self.fence = secret
        lease.renew_forever()
        return lease

    def lease_holder(self) -> int | None:
        held = self._lease()
        if held is None:
            return None
        pid = held.get("pid")
        return pid if isinstance(pid, int) else 0

    def _holder_replica(self) -> str | None:
        held = self._lease()
        replica = held.get("replica") if held else None
        return replica if isinstance(replica, str) else None

    def _lease_stamp(self) -> str:
        held = self._lease() or {}
        return str(held.get("taken") or time.strftime(DATETIME_FORMAT))

    def _died(self, written: TrainingStatus) -> str:
        who = f"pid {written.pid}" if written.pid else "its process"
        where = f" on replica {written.replica}" if written.replica else ""
        return (f"the trainer ({who}{where}) stopped renewing its training lease: it or its "
                "replica died")

    def check(self) -> None:
        """Raise ``StateError`` with one line unless Redis and the objects store answer."""
        self.redis.check()
        self.objects.check()
