"""Users and passwords: hashing, configuration, the verified-header cache, and a live
server with its own users instead of the default."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from nn_server.auth import (
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
