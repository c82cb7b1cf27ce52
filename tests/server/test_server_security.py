"""Issue 14, live: the doors a browser, a flood and a slow client could open, closed.

1. a Host the server is not known by: 421 (DNS rebinding);
2. a browser's cross-site request to a route that changes state: 403, and nothing trains;
3. roles: a ``user`` cannot train, an ``admin`` can;
4. a flood of wrong passwords from 127.0.0.2 leaves logins from 127.0.0.1 working;
5. malformed and randomly damaged requests (non-UTF-8 credentials, bad targets, lenient
   framing): 4xx JSON and one log line, no traceback; a client that hangs up is no error;
   100 Continue only after authentication;
6. a trickling head or body is closed within 40 s, and a worker holds a bounded number of
   connections;
7. a malformed users file stops the server, one others can read gets a warning, and failure
   reasons carry no server paths;

and the original client (the seed README's requests code) works unchanged.

The pure pieces are tested in tests/test_security.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from nn_server.networks.datasets import FILES
from nn_server.web.auth import hash_password
from tests.conftest import ROOT, LiveServer, basic_auth, start_server
from tests.server.conftest import IMAGES, b64, call, wait_for

AUTH = b"Authorization: " + basic_auth("test_nn", "lenet").encode() + b"\r\n"
TRICKLE_LIMIT_S = 40.0


# -- raw HTTP, for what aiohttp would not send ------------------------------------------------


def address(live: LiveServer) -> tuple[str, int]:
    url = urlsplit(live.url)
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


def host_line(live: LiveServer) -> bytes:
    return f"Host: {urlsplit(live.url).netloc}\r\n".encode()


async def exchange(live: LiveServer, data: bytes, *, quiet_s: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data`` on a new connection; (what came back, whether the server closed)."""
    reader, writer = await asyncio.open_connection(*address(live))
    try:
        writer.write(data)
        await writer.drain()
        received, closed = b"", False
        with contextlib.suppress(TimeoutError):
            while not complete(received):
                chunk = await asyncio.wait_for(reader.read(65536), quiet_s)
                if not chunk:
                    return received, True
                received += chunk
            # The answer is complete: does the connection stay open?
            closed = await asyncio.wait_for(reader.read(1), 0.5) == b""
        return received, closed
    except ConnectionResetError:
        return received, True
    finally:
        writer.close()


def complete(received: bytes) -> bool:
    """Whether ``received`` holds one whole final answer (after any 100 Continue)."""
    text = received.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
    head, sep, body = text.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def answer(received: bytes) -> tuple[int, dict[str, Any], bytes]:
    """The final answer's status, JSON body and head."""
    text = received.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
    head, _, body = text.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), received[:200]
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split(b" ")[1]), json.loads(body), head


async def mark(http: aiohttp.ClientSession, live: LiveServer) -> str:
    """A unique line in the server log; what the log says after it is this test's."""
    marker = f"/marker-{uuid.uuid4().hex}"
    await call(http, live, "GET", marker)
    await wait_for(lambda: _logged(live, marker), timeout=10)
    return marker


async def _logged(live: LiveServer, text: str) -> bool:
    return text in live.output()


def log_after(live: LiveServer, marker: str) -> str:
    return live.output().rpartition(marker)[2]


# -- 1. allowed hosts -------------------------------------------------------------------------


async def test_a_foreign_host_is_refused(server: LiveServer, http) -> None:
    for path in ["/lenet/train/status", "/health", "/lenet/train"]:
        status, body, _ = await call(http, server, "GET", path,
                                     headers={"Host": "attacker.example"})
        assert status == 421, body
        assert "attacker.example" in body["error"] and body["status"] == 421
    port = address(server)[1]
    for host in [f"localhost:{port}", f"LOCALHOST:{port}", f"127.0.0.1:{port + 1}", "[::1]"]:
        status, _, _ = await call(http, server, "GET", "/list_nn", headers={"Host": host})
        assert status == 200, host
    received, _ = await exchange(server, b"GET /list_nn HTTP/1.1\r\nHost: a b\r\n" + AUTH +
                                 b"\r\n")
    assert answer(received)[0] == 400
    received, _ = await exchange(server, b"GET /list_nn HTTP/1.1\r\nHost: attacker.example"
                                 b"\r\n" + AUTH + b"\r\n")
    assert received.startswith(b"HTTP/1.1 421 Misdirected Request\r\n"), received[:40]


# -- 2. cross-site requests -------------------------------------------------------------------


@pytest.mark.parametrize("browser", [
    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
    {"Referer": "https://evil.example/cats.html"}, {"Origin": "https://evil.example"},
    {"Origin": "null"},
], ids=["cross-site", "same-site", "referer", "origin", "null-origin"])
async def test_a_cross_site_train_is_refused_and_trains_nothing(
    server: LiveServer, http, browser: dict[str, str],
) -> None:
    _, before, _ = await call(http, server, "GET", "/lenet/train/status")
    for method in ("GET", "POST"):
        status, body, _ = await call(http, server, method, "/lenet/train", headers=browser)
        assert status == 403, body
        assert "another site" in body["error"]
    _, after, _ = await call(http, server, "GET", "/lenet/train/status")
    assert after["state"] == before["state"] and after["started"] == before["started"]
    # Reading is not changing: a browser on another site may read (it cannot see the answer
    # without CORS, which the server does not grant).
    status, _, _ = await call(http, server, "GET", "/list_nn", headers=browser)
    assert status == 200


def seed_client(url: str) -> list[Any]:
    """The original README's Python client (requests, a Basic header, base64 in JSON)."""
    import requests

    auth = base64.b64encode(b"test_nn:lenet")
    headers = {"Authorization": "Basic " + auth.decode()}
    answers = [requests.get(url + path, headers=headers, timeout=30).json()
               for path in ("/list_nn", "/lenet/about", "/lenet/train/status")]
    data = {"image": base64.b64encode(IMAGES[0].read_bytes()).decode()}
    response = requests.post(url + "/lenet/classify", headers=headers, json=data, timeout=30)
    return [*answers, response.json()]


async def test_the_original_client_works_unchanged(server: LiveServer) -> None:
    listed, about, status, classified = await asyncio.to_thread(seed_client, server.url)
    assert listed["text"][0] == "LeNet url:/lenet" and isinstance(about["text"], str)
    assert isinstance(status["accuracy"], str) and isinstance(classified["number"], str)


# -- 3. roles, allowed names, warnings and paths: one server with its own users --------------

ADMIN, USER, LEGACY = ("ann", "pw-ann"), ("bob", "pw-bob"), ("old", "pw-old")
CAP = 8


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Users from a file others may read (admin ann, user bob, old without a role), names of
    its own, a small connection cap, and a data set that fails to load (so a training fails
    at once, with a reason that quotes a file)."""
    tmp = tmp_path_factory.mktemp("configured")
    users = tmp / "users"
    users.write_text(f"# team\nann:{hash_password(ADMIN[1])}:admin\n"
                     f"bob:{hash_password(USER[1])}:user\nold:{hash_password(LEGACY[1])}\n")
    users.chmod(0o644)
    (tmp / "data" / "mnist").mkdir(parents=True)
    for name in FILES:
        (tmp / "data" / "mnist" / f"{name}.gz").write_bytes(b"not a data set")
    env = {"NN_USERS_FILE": str(users), "NN_ALLOWED_HOSTS": "nn.example.test,.corp.test",
           "NN_MAX_CONNECTIONS": str(CAP), "NN_DATA_DIR": str(tmp / "data")}
    with start_server("-d", "127.0.0.1:0", env=env, auth=ADMIN) as live:
        yield live


def as_user(live: LiveServer, user: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": basic_auth(*user)}


async def test_a_user_cannot_train_and_an_admin_can(configured: LiveServer, http) -> None:
    for method in ("GET", "POST"):
        status, body, _ = await call(http, configured, method, "/lenet/train", auth=False,
                                     headers=as_user(configured, USER))
        assert status == 403, body
        assert "admin" in body["error"] and "bob" in body["error"]
    status, _, _ = await call(http, configured, "POST", "/lenet/classify", auth=False,
                              headers=as_user(configured, USER),
                              json={"image": b64(IMAGES[0])})
    assert status == 200, "a user reads and classifies"
    _, before, _ = await call(http, configured, "GET", "/lenet/train/status")
    assert before["state"] == "idle"

    # An entry without a role is an admin, as everyone was before roles.
    status, body, _ = await call(http, configured, "POST", "/lenet/train", auth=False,
                                 headers=as_user(configured, LEGACY))
    assert status == 200, body

    async def finished() -> bool:
        _, now, _ = await call(http, configured, "GET", "/lenet/train/status")
        return bool(now["state"] == "failed")

    await wait_for(finished, timeout=120)
    _, failed, _ = await call(http, configured, "GET", "/lenet/train/status")
    # The reason quotes the bad file, by its name only: no absolute server paths.
    assert "train-images-idx3-ubyte" in failed["error"] or "t10k" in failed["error"]
    assert str(ROOT) not in failed["error"] and "/tmp" not in failed["error"]
    assert " /" not in failed["error"] and "'/" not in failed["error"], failed["error"]


async def test_configured_names_are_answered(configured: LiveServer, http) -> None:
    for host, expected in [("nn.example.test", 200), ("NN.example.test:443", 200),
                           ("corp.test", 200), ("build.corp.test:8080", 200),
                           ("example.test", 421), ("evilcorp.test", 421)]:
        status, _, _ = await call(http, configured, "GET", "/list_nn", headers={"Host": host})
        assert status == expected, host


def test_a_users_file_others_can_read_gets_a_warning(configured: LiveServer) -> None:
    assert "can be read or changed by other users (mode 644)" in configured.output()


async def test_a_worker_holds_a_bounded_number_of_connections(configured: LiveServer) -> None:
    """At the cap, a new connection takes an idle one's place; with none idle, 503."""
    probe = b"GET /health HTTP/1.1\r\n" + host_line(configured) + b"Connection: close\r\n\r\n"
    busy: list[asyncio.StreamWriter] = []
    try:
        while True:
            status, body, _ = answer((await exchange(configured, probe))[0])
            if status == 503:
                break
            assert status == 200
            assert len(busy) <= CAP + 2, "the cap was never reached"
            _, writer = await asyncio.open_connection(*address(configured))
            writer.write(b"GET /health HTTP/1.1\r\n")  # a head in progress: not idle
            await writer.drain()
            busy.append(writer)
        assert body["status"] == 503 and "connections" in body["error"]
        assert len(busy) >= CAP - 2
    finally:
        for writer in busy:
            writer.close()

    async def serving() -> bool:
        return answer((await exchange(configured, probe))[0])[0] == 200

    await wait_for(serving, timeout=30)


def test_a_malformed_users_file_refuses_to_start(tmp_path: Path) -> None:
    good = hash_password("a")
    for entry, problem in [(f"alice:{good[:-4]}", "32 bytes"), (f"alice:{good}:root", "'root'"),
                           ("alice:plaintext", "not scrypt")]:
        users = tmp_path / "users"
        users.write_text(f"# team\n{entry}\n")
        users.chmod(0o600)
        env = {**os.environ, "NN_USERS_FILE": str(users)}
        done = subprocess.run([sys.executable, "-m", "nn_server", "-d", "127.0.0.1:0"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 2, done.stderr
        assert "entry 2 ('alice')" in done.stderr and problem in done.stderr
        assert "Traceback" not in done.stderr and "Serving on" not in done.stdout


# -- 4. a flood of wrong passwords -------------------------------------------------------------

FLOOD_CONNECTIONS = 64
LOGINS = 10


async def test_a_flood_from_one_address_spares_the_others() -> None:
    """64 connections of wrong passwords from 127.0.0.2; meanwhile 10 users log in for the
    first time (no verified header to fall back on) from 127.0.0.1: at least 9 get in."""
    logins = [(f"user{i}", f"pw-{i}") for i in range(LOGINS)]
    entries = [f"{name}:{hash_password(pw)}:user" for name, pw in [*logins, ("probe", "p")]]
    with start_server("-d", "127.0.0.1:0", env={"NN_USERS": ",".join(entries)},
                      auth=("probe", "p")) as live:
        answers: dict[int, int] = {}
        stop = asyncio.Event()
        flood = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), limit=FLOOD_CONNECTIONS)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=flood, timeout=timeout) as attacker, \
                aiohttp.ClientSession(timeout=timeout) as users:

            async def guess(worker: int) -> None:
                for n in range(100_000):
                    if stop.is_set():
                        return
                    wrong = {"Authorization": basic_auth("test_nn", f"guess-{worker}-{n}")}
                    status, _, _ = await call(attacker, live, "GET", "/list_nn", auth=False,
                                              headers=wrong)
                    answers[status] = answers.get(status, 0) + 1

            async def underway() -> bool:
                return sum(answers.values()) >= FLOOD_CONNECTIONS

            guessers = [asyncio.create_task(guess(w)) for w in range(FLOOD_CONNECTIONS)]
            try:
                await wait_for(underway, timeout=60)
                got_in = 0
                for user in logins:
                    status, _, _ = await call(users, live, "GET", "/list_nn", auth=False,
                                              headers={"Authorization": basic_auth(*user)})
                    got_in += status == 200
            finally:
                stop.set()
                await asyncio.gather(*guessers, return_exceptions=True)
        assert got_in >= LOGINS - 1, (got_in, answers)
        assert set(answers) <= {401, 429} and answers.get(429, 0) > 0, answers
        assert "Traceback" not in live.output()


# -- 5. malformed requests, disconnects, 100 Continue --------------------------------------


async def test_non_utf8_credentials_are_401(server: LiveServer, http) -> None:
    marker = await mark(http, server)
    received, _ = await exchange(server, b"GET /list_nn HTTP/1.1\r\n" + host_line(server) +
                                 b"Authorization: Basic \xff\xfe\x80\r\n\r\n")
    status, body, head = answer(received)
    assert status == 401 and body["status"] == 401, body
    assert b"WWW-Authenticate: Basic" in head
    after = log_after(server, marker)
    assert "Traceback" not in after and "ERROR" not in after


MALFORMED = {
    # name: (raw request after the request line's method, status, the connection closes).
    # Each kind of head the parsing functions refuse is here once, end to end; their full
    # tables are unit tests (tests/test_request_parsing.py).
    "target not a path": (b"GET lenet HTTP/1.1\r\n{host}{auth}\r\n", 400, True),
    "control character in the target": (b"GET /a\x1bb HTTP/1.1\r\n{host}{auth}\r\n", 400, True),
    "HTTP version": (b"GET /list_nn HTTP/2.0\r\n{host}{auth}\r\n", 400, True),
    "obs-fold": (b"GET /list_nn HTTP/1.1\r\n{host}{auth}X-A: b\r\n  c: d\r\n\r\n", 400, True),
    "Content-Length twice": (b"POST /lenet/classify HTTP/1.1\r\n{host}{auth}"
                             b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400, True),
    "0x chunk size": (b"POST /lenet/classify HTTP/1.1\r\n{host}{auth}"
                      b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"0x2\r\n{}\r\n0\r\n\r\n", 400, True),
    "absolute target for another host": (b"GET http://evil.example/list_nn HTTP/1.1\r\n"
                                         b"{host}{auth}\r\n", 400, True),
    "no Host": (b"GET /list_nn HTTP/1.1\r\n{auth}\r\n", 400, False),
    "two Hosts": (b"GET /list_nn HTTP/1.1\r\n{host}Host: evil.example\r\n{auth}\r\n", 400,
                  False),
    "control characters in Host": (b"GET /list_nn HTTP/1.1\r\nHost: a\x1b[2Jb\r\n{auth}\r\n",
                                   400, False),
    "head too large": (b"GET /list_nn HTTP/1.1\r\n{host}X-Big: " + b"a" * 20_000 + b"\r\n\r\n",
                       413, True),
    "control character in the method": (b"G\x1bET /list_nn HTTP/1.1\r\n{host}{auth}\r\n", 405,
                                        False),
}


@pytest.mark.parametrize("case", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_request_gets_4xx_json_and_one_log_line(
    server: LiveServer, http, case: tuple[bytes, int, bool],
) -> None:
    raw, expected, closes = case
    marker = await mark(http, server)
    received, closed = await exchange(
        server, raw.replace(b"{host}", host_line(server)).replace(b"{auth}", AUTH))
    status, body, _ = answer(received)
    assert status == expected and body["status"] == expected, body
    assert isinstance(body["error"], str) and "Bad Request" not in body["error"], body
    assert closed or not closes, "framing errors close: nothing after them is a request"
    await mark(http, server)  # the request's own line is in the log before this one
    after = log_after(server, marker).partition("/marker-")[0]
    assert "Traceback" not in after and "ERROR" not in after, after
    assert "\x1b" not in after, "control characters are escaped in the log"
    assert len([line for line in after.splitlines() if f" {expected} " in line]) == 1, after


MUTATIONS = 200
NOISE = b"\x00\x01\x1b\x7f\x80\xff :;,\t\r\n/?#%@[]0x9-+_HTTP"


def mutated(rnd: random.Random, request: bytes, keep: bytes) -> bytes:
    """``request`` with a few bytes replaced, inserted or deleted, before ``keep`` (the
    credentials: wrong ones would be guesses, and count against this address)."""
    data = bytearray(request)
    for _ in range(rnd.randint(1, 4)):
        pos, roll = rnd.randrange(data.find(keep)), rnd.random()
        if roll < 0.4:
            data[pos] = rnd.choice(NOISE)
        elif roll < 0.7:
            data[pos:pos] = bytes([rnd.choice(NOISE)]) * rnd.randint(1, 3)
        else:
            del data[pos:pos + rnd.randint(1, 5)]
    return bytes(data)


async def test_mutated_requests_never_get_a_5xx_or_a_traceback(server: LiveServer,
                                                              http) -> None:
    """Random damage to a valid request: every answer is below 500 and JSON, and the log
    holds no traceback. (A request whose damage leaves it incomplete is still waited for:
    no answer within a second is fine here; the deadlines close those.)"""
    rnd = random.Random(14)
    valid = (b"POST /lenet/classify HTTP/1.1\r\n" + host_line(server) +
             b"Content-Type: application/json\r\nContent-Length: 13\r\n" + AUTH +
             b"\r\n{\"image\": \"\"}")
    marker = await mark(http, server)
    statuses: list[int] = []
    for _ in range(MUTATIONS // 20):
        batch = [exchange(server, mutated(rnd, valid, AUTH), quiet_s=1.0) for _ in range(20)]
        for received, _ in await asyncio.gather(*batch):
            if received.startswith(b"HTTP/1.1 ") and complete(received):
                statuses.append(answer(received)[0])
    assert statuses and max(statuses) < 500, sorted(set(statuses))
    assert len(statuses) >= MUTATIONS // 2, "most damage is answered at once"
    after = log_after(server, marker)
    assert "Traceback" not in after and "ERROR" not in after


async def test_parse_errors_with_the_right_password_are_not_401(server: LiveServer) -> None:
    received, _ = await exchange(server, b"GET /lenet/train/status HTTP/1.1\r\n" +
                                 host_line(server) + AUTH + b"Content-Length: x\r\n\r\n")
    status, body, _ = answer(received)
    assert status == 400 and "Content-Length" in body["error"], body


async def test_a_client_that_hangs_up_is_no_error(server: LiveServer, http) -> None:
    marker = await mark(http, server)
    _, writer = await asyncio.open_connection(*address(server))
    writer.write(b"POST /lenet/classify HTTP/1.1\r\n" + host_line(server) + AUTH +
                 b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ima")
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    async def logged() -> bool:
        return "DISCONNECTED" in log_after(server, marker)

    await wait_for(logged, timeout=10)
    after = log_after(server, marker)
    assert "ERROR" not in after and "Traceback" not in after, after
    assert " 499 DISCONNECTED" in after


async def test_100_continue_comes_after_authentication(server: LiveServer) -> None:
    expect = b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
    for path in (b"/lenet/classify", b"/lenet/train"):  # streamed; read before middleware
        received, closed = await exchange(
            server, b"POST " + path + b" HTTP/1.1\r\n" + host_line(server) + expect +
            b"Content-Length: 16000000\r\n\r\n")
        assert received.startswith(b"HTTP/1.1 401 "), received[:100]
        assert b"100 Continue" not in received and closed, "no body is invited, none read"
    reader, writer = await asyncio.open_connection(*address(server))
    try:
        writer.write(b"POST /lenet/classify HTTP/1.1\r\n" + host_line(server) + AUTH + expect +
                     b"Content-Length: 2\r\n\r\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
        assert line == b"HTTP/1.1 100 Continue\r\n"
    finally:
        writer.close()


# -- 6. slow clients ------------------------------------------------------------------------


async def trickle(live: LiveServer, start: bytes, drip: bytes) -> bytes:
    """Send ``start``, then ``drip`` every 2 s, until the server closes; what it answered."""
    reader, writer = await asyncio.open_connection(*address(live))
    received = b""
    deadline = asyncio.get_running_loop().time() + TRICKLE_LIMIT_S
    try:
        writer.write(start)
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(TimeoutError):
                chunk = await asyncio.wait_for(reader.read(65536), 2.0)
                if not chunk:
                    return received
                received += chunk
                continue
            writer.write(drip)
            await writer.drain()
    except (ConnectionResetError, BrokenPipeError):
        return received
    finally:
        writer.close()
    raise AssertionError(f"still open after {TRICKLE_LIMIT_S} s")


async def test_trickling_clients_are_closed(server: LiveServer) -> None:
    """A head that arrives a line every 2 s, and a body that arrives a byte every 2 s, with
    the default settings: each closed (408) within 40 s."""
    head = trickle(server, b"GET /health HTTP/1.1\r\n" + host_line(server), b"X-Drip: 1\r\n")
    body = trickle(server, b"POST /lenet/classify HTTP/1.1\r\n" + host_line(server) + AUTH +
                   b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n", b"a")
    for received in await asyncio.gather(head, body):
        if received:  # else the reset beat the answer to the client
            status, answer_body, _ = answer(received)
            assert status == 408, answer_body
