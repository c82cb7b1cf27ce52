"""Users and passwords: hashing, configuration, the verified-header cache, and a live
server with its own users instead of the default."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys

import pytest

from nn_server.web.auth import (
    Authenticator,
    UsersError,
    hash_password,
    load_users,
    parse_users,
    verify_password,
)
from tests.conftest import ROOT, start_server
from tests.server.conftest import call


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_hashes_are_salted_and_verify() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and "s3cret" not in first
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("s3creT", first)
    assert not verify_password("s3cret", "plain-text")


def test_users_from_file_and_environment(tmp_path) -> None:
    users_file = tmp_path / "users"
    users_file.write_text(f"# team\nalice:{hash_password('a')}\n\n")
    users = load_users(users_file, f"bob:{hash_password('b')}")
    assert users is not None and set(users) == {"alice", "bob"}
    assert load_users(None, None) is None
    with pytest.raises(UsersError, match="entry 1"):
        parse_users("carol:plaintext", "NN_USERS")


def test_default_user_and_verified_cache() -> None:
    auth = Authenticator.configured(None, None)
    assert auth.uses_default
    good = basic("test_nn", "lenet")
    assert auth.cached(good) is None
    assert auth.verify(good) == "test_nn"
    assert auth.cached(good) == "test_nn"  # the hot path: no hashing
    assert good.encode() not in b"".join(auth._verified)  # the cache holds no credentials
    for bad in [basic("test_nn", "LENET"), basic("ghost", "lenet"), "Basic ###", "Bearer x"]:
        assert auth.verify(bad) is None
        assert auth.cached(bad) is None


async def test_configured_users_replace_the_default(http) -> None:
    env = {"NN_USERS": f"alice:{hash_password('wonderland')}"}
    with start_server("-d", "127.0.0.1:0", env=env, auth=("alice", "wonderland")) as live:
        status, _, _ = await call(http, live, "GET", "/list_nn")  # as alice
        assert status == 200
        status, body, _ = await call(http, live, "GET", "/list_nn", auth=False,
                                     headers={"Authorization": basic("test_nn", "lenet")})
        assert status == 401, body
        assert "wonderland" not in live.output() and "YWxpY2U" not in live.output()


def test_unreadable_users_file_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "users"
    bad.write_text("alice:password\n")
    env = {**os.environ, "NN_USERS_FILE": str(bad)}
    done = subprocess.run([sys.executable, "-m", "nn_server", "-d", "127.0.0.1:0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 2
    assert str(bad) in done.stderr and "Traceback" not in done.stderr


async def test_a_flood_of_guesses_gets_429_and_spares_verified_clients(server, http) -> None:
    """Distinct wrong passwords queue for the one hashing thread; past the limit they get
    429 with Retry-After at once, and a client whose header is verified is unaffected."""
    good = {"Authorization": basic("test_nn", "lenet")}
    assert (await call(http, server, "GET", "/list_nn", auth=False, headers=good))[0] == 200

    async def guess(i: int) -> tuple[int, str | None]:
        status, _, resp = await call(http, server, "GET", "/list_nn", auth=False,
                                     headers={"Authorization": basic("test_nn", f"guess{i}")})
        return status, resp.headers.get("Retry-After")

    tasks = [asyncio.ensure_future(guess(i)) for i in range(60)]
    # The queue is full once the first guess is refused: only then does the verified go.
    for finished in asyncio.as_completed(tasks):
        if (await finished)[0] == 429:
            break
    status, _, _ = await call(http, server, "GET", "/list_nn", auth=False, headers=good)
    assert status == 200, "a verified header needs no hashing and no queue"
    answers = await asyncio.gather(*tasks)
    assert {s for s, _ in answers} <= {401, 429}
    assert any(s == 429 and retry == "1" for s, retry in answers)
    assert sum(s == 401 for s, _ in answers) >= 16


async def test_a_burst_with_one_new_header_shares_one_check(server, http) -> None:
    # The same user with the scheme spelt "BASIC": a header this worker has not verified.
    new = {"Authorization": basic("test_nn", "lenet").replace("Basic", "BASIC")}
    answers = await asyncio.gather(*(
        call(http, server, "GET", "/list_nn", auth=False, headers=new) for _ in range(50)))
    # One check serves them all; 50 separate ones would have overflowed the queue (429).
    assert [a[0] for a in answers] == [200] * 50
