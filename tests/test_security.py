"""The pure pieces of issue 14, without a server: Host names and the site a browser request
comes from, client keys behind proxies, users-file entries and roles, the fair password
gate, strict head parsing, and failure reasons without server paths. The live behaviour
is in tests/server/test_server_security.py."""

from __future__ import annotations

import asyncio
import getpass
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nn_server.core.addresses import host_name, parse_networks
from nn_server.core.config import Config, ConfigError
from nn_server.core.redaction import hide_paths
from nn_server.store.status import TrainingStatus
from nn_server.web import auth, gate
from nn_server.web.auth import (
    ADMIN,
    USER,
    Authenticator,
    UsersError,
    hash_password,
    hash_problem,
    parse_users,
    permission_warning,
    verify_password,
)
from nn_server.web.clients import Clients
from nn_server.web.connections import Exchange, head_problem, loggable, strictness_problem
from nn_server.web.errors import TooManyAttempts
from nn_server.web.hosts import HostError, HostPolicy, known_names, other_site

HASH = hash_password("secret")

# -- Host names ---------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "name"), [
    ("127.0.0.1", "127.0.0.1"), ("127.0.0.1:5000", "127.0.0.1"), ("LocalHost:80", "localhost"),
    ("localhost.", "localhost"), ("[::1]:5000", "[::1]"), ("[0:0::1]", "[::1]"),
    ("nn.example.test:", "nn.example.test"), ("my_box", "my_box"),
])
def test_host_names_are_read_without_port_or_case(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize("header", [
    "", ":5000", "a b", "evil.example/x", "user@host", "[::1", "[nothere]:1", "::1",
    "host:http", "host:123456", "a\x1bb", "h\udcffst", ".example.test",
])
def test_malformed_host_names_are_none(header: str) -> None:
    assert host_name(header) is None


def test_the_policy_answers_known_names_and_refuses_others() -> None:
    policy = HostPolicy(["nn.example.test", ".corp.test", "10.0.0.5"])
    for header in ["127.0.0.1:5000", "localhost", "[::1]:8", "NN.example.test:443",
                   "corp.test", "a.b.corp.test:5000", "10.0.0.5:5000"]:
        assert policy.host_of([header], "1.1") == header
    assert "NN.example.test:443" in policy.accepted, "the next time is a set lookup"
    for header, status in [("attacker.example", 421), ("evilcorp.test", 421),
                           ("10.0.0.6", 421), ("bad host", 400)]:
        with pytest.raises(HostError) as refused:
            policy.host_of([header], "1.1")
        assert refused.value.status == status
    assert policy.host_of([], "1.0") == "", "HTTP/1.0 may leave Host out"
    for values in ([], ["localhost", "localhost"]):
        with pytest.raises(HostError) as refused:
            policy.host_of(values, "1.1")
        assert refused.value.status == 400


def test_any_host_when_configured() -> None:
    assert HostPolicy(["*"]).host_of(["whatever.example"], "1.1") == "whatever.example"


def test_remembered_hosts_are_bounded() -> None:
    policy = HostPolicy([])
    for port in range(1000):
        policy.host_of([f"localhost:{port}"], "1.1")
    assert len(policy.accepted) <= 256


def test_the_machine_knows_its_names() -> None:
    names = known_names("0.0.0.0", "192.0.2.7")
    assert "0.0.0.0" in names and "192.0.2.7" in names
    assert all(host_name(n) == n for n in names)
    assert "[::1]" in known_names("::1")


def test_allowed_hosts_are_validated_in_the_config(tmp_path: Path) -> None:
    env = {"NN_STATE_DIR": str(tmp_path), "NN_ALLOWED_HOSTS": "Nn.Example.test, .corp.test,*"}
    assert Config.from_env(env).allowed_hosts == ("nn.example.test", ".corp.test", "*")
    with pytest.raises(ConfigError, match="NN_ALLOWED_HOSTS"):
        Config.from_env({**env, "NN_ALLOWED_HOSTS": "http://x/"})
    with pytest.raises(ConfigError, match="NN_TRUSTED_PROXIES"):
        Config.from_env({**env, "NN_TRUSTED_PROXIES": "10.0.0.0/8, nginx"})


# -- the site a browser request comes from ------------------------------------------------


@pytest.mark.parametrize(("headers", "refused"), [
    ({}, False),  # curl, requests, the SDK
    ({"sec-fetch-site": "same-origin"}, False),
    ({"sec-fetch-site": "none"}, False),  # typed into the address bar
    ({"sec-fetch-site": "cross-site"}, True),
    ({"sec-fetch-site": "same-site"}, True),
    ({"sec-fetch-site": "same-origin", "origin": "https://evil.example"}, False),
    ({"origin": "http://127.0.0.1:5000"}, False),
    ({"origin": "http://evil.example"}, True),
    ({"origin": "null"}, True),
    ({"referer": "http://127.0.0.1:5000/docs"}, False),
    ({"referer": "https://evil.example/page"}, True),
])
def test_other_sites_are_told_by_what_browsers_send(headers: dict[str, str],
                                                    refused: bool) -> None:
    assert (other_site(headers, "127.0.0.1:5000") is not None) == refused


# -- clients --------------------------------------------------------------------------------


def test_clients_are_addresses_unless_a_trusted_proxy_names_them() -> None:
    direct = Clients()
    assert direct.client_of("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert direct.client_of("::ffff:203.0.113.9", None) == "203.0.113.9"
    assert direct.client_of("2001:db8::1", None) == direct.client_of("2001:db8::2", None)
    proxied = Clients(parse_networks("127.0.0.1, 10.0.0.0/8"))
    assert proxied.client_of("127.0.0.1", "198.51.100.1") == "198.51.100.1"
    assert proxied.client_of("127.0.0.1", "6.6.6.6, 198.51.100.1, 10.1.2.3") == \
        "198.51.100.1", "the last hop no trusted proxy added is the client"
    assert proxied.client_of("203.0.113.9", "198.51.100.1") == "203.0.113.9", (
        "an untrusted peer's X-Forwarded-For is whatever it chose to send")
    assert proxied.client_of("127.0.0.1", "garbage") == "127.0.0.1"
    assert proxied.client_of("127.0.0.1", None) == "127.0.0.1"


# -- users and roles ----------------------------------------------------------------------


def test_entries_have_roles_and_old_entries_are_admins() -> None:
    users = parse_users(f"old:{HASH}\nann:{HASH}:admin\nbob:{HASH}:user\n# note\n", "file")
    assert {name: a.role for name, a in users.items()} == {
        "old": ADMIN, "ann": ADMIN, "bob": USER}
    default = Authenticator.configured(None, None)
    assert default.role_of("test_nn") == ADMIN, "the original contract: test_nn may train"


@pytest.mark.parametrize(("entry", "problem"), [
    ("alice:password", "not scrypt"),
    (f"alice:{HASH[:-8]}", "not 32 bytes"),
    (f"alice:{HASH.replace('$16384$', '$1000$')}", "power of two"),
    (f"alice:{HASH.replace('$16384$', '$1048576$')}", "MiB"),
    (f"alice:{HASH.replace('$8$', '$x$')}", "not a number"),
    (f"alice:{HASH}:root", "'root'"),
    (f"al ice:{HASH}", "spaces"),
    (f":{HASH}", "expected USER"),
    ("alice", "expected USER"),
])
def test_a_malformed_entry_is_named(entry: str, problem: str) -> None:
    with pytest.raises(UsersError, match="entry 2") as error:
        parse_users(f"# users\n{entry}\n", "users.txt")
    assert problem in str(error.value)
    assert "alice" in str(error.value) or not entry.startswith("alice")
    assert hash_problem(HASH) is None


def test_the_hash_tool_writes_the_role(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "s3cret")
    assert auth.main(["--role", "admin", "carol"]) == 0
    assert auth.main(["dave"]) == 0
    users = parse_users(capsys.readouterr().out, "output")
    assert (users["carol"].role, users["dave"].role) == (ADMIN, USER)
    assert verify_password("s3cret", users["carol"].hash)
    with pytest.raises(SystemExit) as refused:
        auth.main(["eve:x"])
    assert refused.value.code == 2


def test_a_users_file_others_can_read_gets_a_warning(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(f"alice:{HASH}:admin\n")
    users.chmod(0o600)
    assert permission_warning(users) is None
    users.chmod(0o644)
    warning = permission_warning(users)
    assert warning is not None and "644" in warning and "chmod 600" in warning


# -- the fair password gate ---------------------------------------------------------------


@dataclass
class SlowAuthenticator:
    """Stands in for ``Authenticator``: each check takes a while, and is recorded."""

    good: str = "good"
    seconds: float = 0.02
    checked: list[str] = field(default_factory=list)

    def fingerprint(self, header: str) -> bytes:
        return header.encode()

    def verify(self, header: str) -> str | None:
        time.sleep(self.seconds)
        self.checked.append(header)
        return "user" if header.startswith(self.good) else None


async def test_waiting_clients_take_turns() -> None:
    """A client with many checks queued delays another's one check by one check, not by
    all of them."""
    auth = SlowAuthenticator()
    door = gate.AuthGate()
    flood = [asyncio.ensure_future(door.verify(auth, f"bad{i}", "flooder"))
             for i in range(gate.PENDING_PER_CLIENT)]
    await asyncio.sleep(0)
    with pytest.raises(TooManyAttempts):
        await door.verify(auth, "bad-one-too-many", "flooder")
    assert await door.verify(auth, "good", "other") == "user"
    # The check running when it came, then one of the flooder's (its turn came first).
    assert auth.checked.index("good") <= 2, auth.checked
    assert await asyncio.gather(*flood) == [None] * gate.PENDING_PER_CLIENT
    door.executor.shutdown()


async def test_equal_headers_share_a_check_and_a_failed_one_is_remembered() -> None:
    auth = SlowAuthenticator()
    door = gate.AuthGate()
    answers = await asyncio.gather(*(door.verify(auth, "bad", "c") for _ in range(20)))
    assert answers == [None] * 20 and auth.checked == ["bad"]
    assert await door.verify(auth, "bad", "c") is None
    assert auth.checked == ["bad"], "the same wrong header again costs no hash"
    door.executor.shutdown()


def test_a_client_that_keeps_failing_backs_off() -> None:
    client = gate.Client()
    now = 1000.0
    for _ in range(gate.FREE_FAILURES - 1):
        client.failed(now)
    assert client.backoff(now) == 0.0, "a few mistakes cost nothing"
    client.failed(now)
    assert client.backoff(now) == pytest.approx(gate.LEAK_S)
    client.failed(now)
    assert client.backoff(now) == pytest.approx(2 * gate.LEAK_S)
    assert client.backoff(now + 2 * gate.LEAK_S) == 0.0, "the bucket drains"
    assert client.backoff(now + 3600) == 0.0 and client.level(now + 3600) == 0.0


async def test_a_backed_off_client_gets_one_check_at_a_time() -> None:
    auth = SlowAuthenticator(seconds=0.0)
    door = gate.AuthGate()
    who = door.client("guesser")
    now = asyncio.get_running_loop().time()
    for _ in range(gate.FREE_FAILURES):
        who.failed(now)
    first = asyncio.ensure_future(door.verify(auth, "good-late", "guesser"))
    await asyncio.sleep(0)
    with pytest.raises(TooManyAttempts) as refused:
        await door.verify(auth, "another", "guesser")
    assert refused.value.headers["Retry-After"] == "1"
    assert await door.verify(auth, "good-fresh", "someone-else") == "user"
    assert await first == "user", "a correct password still gets in, after the wait"
    door.executor.shutdown()


# -- strict parsing -----------------------------------------------------------------------

HEAD = b"POST /lenet/classify HTTP/1.1\r\nHost: h\r\nUser-Agent: x :y\r\n"


def test_strict_heads() -> None:
    assert strictness_problem(HEAD + b"Content-Length: 5") is None
    assert "colon" in str(strictness_problem(HEAD + b"Content-Length : 5"))
    assert "folding" in str(strictness_problem(HEAD + b"X-A: b\r\n c"))
    assert "request line" in head_problem(b"GET /\r\nHost: h")
    assert "not supported" in head_problem(b"GET / HTTP/2.0\r\nHost: h")
    assert "line 3" in head_problem(b"GET / HTTP/1.1\r\nHost: h\r\ngarbage")


@pytest.mark.parametrize(("value", "base", "number"), [
    ("5", 10, 5), ("5 ", 10, 5), ("1f", 16, 31), ("1F\t", 16, 31), ("0", 16, 0)])
def test_numbers_http_allows(value: str, base: int, number: int) -> None:
    assert Exchange._safe_int(value, base) == number


@pytest.mark.parametrize(("value", "base"), [
    ("0x2", 16), (" 2", 16), ("+2", 10), ("-1", 10), ("1_0", 10), ("٢", 10), ("", 10),
    ("2 3", 10), ("9" * 30, 10)])
def test_numbers_only_python_reads(value: str, base: int) -> None:
    with pytest.raises(ValueError):
        Exchange._safe_int(value, base)


def test_log_lines_escape_control_characters() -> None:
    assert loggable("GET /list_nn") == "GET /list_nn"
    assert loggable("GET /a\x1b[31m\n") == "GET /a\\x1b[31m\\n"
    assert loggable("\udcff") == "\\udcff"


# -- no server paths in failure reasons ---------------------------------------------------


def test_failure_reasons_name_no_server_paths() -> None:
    reason = ("training failed: DataError: /home/alice/.cache/nn-server/mnist/train.gz does "
              "not match; see https://example.test/a/b, ../shared/mnist or /lenet")
    shown = TrainingStatus().failed(reason, "now").error or ""
    assert "/home/alice" not in shown and "…/train.gz does not match" in shown
    assert "https://example.test/a/b" in shown and "../shared/mnist" in shown
    assert hide_paths("[Errno 2] No such file: '/srv/x/y.params'") == \
        "[Errno 2] No such file: '…/y.params'"
