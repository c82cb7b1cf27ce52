"""One worker's password checks: slow on purpose, so shared out fairly among clients.

A check costs ~50 ms of scrypt and runs off the event loop, on one thread. Requests that
carry the same header share one check (a client's first burst costs one hash). Beyond
that, checks are counted per client (``nn_server.web.clients``: an address, an IPv6 /64, or
the client a trusted proxy names):

* a client may have ``PENDING_PER_CLIENT`` checks waiting, all clients ``PENDING_TOTAL``;
  past that, 429 with ``Retry-After``, at once;
* the hashing thread serves the waiting clients in turn (round robin), so a client with
  sixteen checks queued delays another client's check by one of them, not by sixteen;
* every failed check adds one to the client's bucket, which drains by one every
  ``LEAK_S``. From ``FREE_FAILURES`` on, the client gets one check at a time, and each
  waits until the bucket is below that mark again: a client that keeps guessing gets
  about one guess per ``LEAK_S``, one that mistyped a few times notices nothing;
* a header that just failed is answered "wrong" for ``REFUSED_FOR_S`` without a check.

So a flood of guesses from one address costs that address: other clients wait at most one
check per flooding client, and those whose header is verified already
(``Authenticator.cached``) never come here.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nn_server.web.auth import Authenticator
from nn_server.web.errors import TooManyAttempts

PENDING_PER_CLIENT = 16
PENDING_TOTAL = 256
FREE_FAILURES = 32
LEAK_S = 1.0
CLIENTS_REMEMBERED = 4096
"""Clients whose counts are kept (least recently seen forgotten first)."""
REFUSED_REMEMBERED = 1024
REFUSED_FOR_S = 5.0
"""How long a header that failed its check is answered "wrong" without another check: the
same guess again is no new guess, and costs no hash."""


@dataclass(eq=False)
class Client:
    """What one client has pending and how often it failed lately."""

    pending: int = 0
    failures: float = 0.0
    """The bucket: failed checks, less one per ``LEAK_S`` since ``updated``."""
    updated: float = 0.0

    def level(self, now: float) -> float:
        return max(0.0, self.failures - (now - self.updated) / LEAK_S)

    def failed(self, now: float) -> None:
        self.failures, self.updated = self.level(now) + 1, now

    def backoff(self, now: float) -> float:
        """How long this client's next check must wait (0 below ``FREE_FAILURES``)."""
        excess = self.level(now) - FREE_FAILURES + 1
        return excess * LEAK_S if excess > 0 else 0.0


@dataclass
class Turns:
    """One check at a time on the hashing thread; waiting clients take turns."""

    busy: bool = False
    waiting: OrderedDict[Client, deque[asyncio.Future[None]]] = field(
        default_factory=OrderedDict)

    async def take(self, client: Client) -> None:
        if not self.busy:
            self.busy = True
            return
        turn = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(client, deque()).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.give()  # handed the turn just as we were cancelled: pass it on
            raise

    def give(self) -> None:
        """Hand the thread to the next client in line (or leave it free)."""
        while self.waiting:
            client, turns = next(iter(self.waiting.items()))
            turn = turns.popleft()
            if turns:
                self.waiting.move_to_end(client)  # its next check waits for the others
            else:
                del self.waiting[client]
            if not turn.done():
                turn.set_result(None)
                return
        self.busy = False


@dataclass
class AuthGate:
    """This worker's password checks (on ``app.ctx``)."""

    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="nn-auth"))
    checks: dict[bytes, asyncio.Future[str | None]] = field(default_factory=dict)
    """Checks in progress by header fingerprint, so that equal headers share one."""
    clients: OrderedDict[str, Client] = field(default_factory=OrderedDict)
    turns: Turns = field(default_factory=Turns)
    pending: int = 0
    refused: OrderedDict[bytes, float] = field(default_factory=OrderedDict)
    """Fingerprints of headers that failed lately, with when to forget them."""

    async def verify(self, authenticator: Authenticator, header: str, client: str) -> str | None:
        """The user ``header`` authenticates, or None; ``TooManyAttempts`` (429) when
        ``client`` (see ``nn_server.web.clients``) or everyone has too many checks waiting."""
        key = authenticator.fingerprint(header)
        check = self.checks.get(key)
        if check is None:
            now = asyncio.get_running_loop().time()
            if self.refused.get(key, now) > now:
                return None
            who = self.client(client)
            delay = who.backoff(now)
            if who.pending >= (1 if delay else PENDING_PER_CLIENT):
                retry = max(1, math.ceil(delay))
                raise TooManyAttempts(
                    "too many password checks from your address; retry in "
                    f"{retry} s", headers={"Retry-After": str(retry)})
            if self.pending >= PENDING_TOTAL:
                raise TooManyAttempts("too many password checks in progress; retry shortly")
            who.pending += 1
            self.pending += 1
            check = asyncio.ensure_future(self.check(who, authenticator, header, key, delay))
            self.checks[key] = check
            check.add_done_callback(lambda _: self.checks.pop(key, None))
        # shield: a client that hangs up must not cancel the check others are waiting on.
        return await asyncio.shield(check)

    async def check(
        self, who: Client, authenticator: Authenticator, header: str, key: bytes, delay: float,
    ) -> str | None:
        loop = asyncio.get_running_loop()
        try:
            if delay:
                await asyncio.sleep(delay)
            await self.turns.take(who)
            try:
                user = await loop.run_in_executor(self.executor, authenticator.verify, header)
            finally:
                self.turns.give()
        finally:
            who.pending -= 1
            self.pending -= 1
        if user is None:
            now = loop.time()
            who.failed(now)
            self.refused[key] = now + REFUSED_FOR_S
            self.refused.move_to_end(key)
            while len(self.refused) > REFUSED_REMEMBERED:
                self.refused.popitem(last=False)
        return user

    def client(self, key: str) -> Client:
        who = self.clients.get(key)
        if who is None:
            who = self.clients[key] = Client()
            while len(self.clients) > CLIENTS_REMEMBERED:
                self.clients.popitem(last=False)
        else:
            self.clients.move_to_end(key)
        return who
