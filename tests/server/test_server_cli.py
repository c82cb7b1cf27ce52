"""The command line: all ten combinations of the spec (live, over HTTP or HTTPS with the
generated certificate verified), flag order, port 0, localaddr, bad arguments, TLS files."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from nn_server.core.addresses import local_address
from nn_server.web.arguments import DEFAULT_PORT, LOCALADDR, Launch, parse
from tests.conftest import LISTED, ROOT, LiveServer, start_server
from tests.server.conftest import call

# (argv, dev, tls, host, port) for the ten combinations of the original README.
COMBINATIONS = [
    ([], False, False, LOCALADDR, DEFAULT_PORT),
    (["127.0.0.1:0"], False, False, "127.0.0.1", 0),
    (["-d"], True, False, "127.0.0.1", DEFAULT_PORT),
    (["-d", "127.0.0.1:0"], True, False, "127.0.0.1", 0),
    (["-d", "localaddr:0"], True, False, LOCALADDR, 0),
    (["-s"], False, True, LOCALADDR, DEFAULT_PORT),
    (["-s", "127.0.0.1:0"], False, True, "127.0.0.1", 0),
    (["-s", "-d"], True, True, "127.0.0.1", DEFAULT_PORT),
    (["127.0.0.1:0", "-d", "-s"], True, True, "127.0.0.1", 0),
    (["-d", "localaddr:0", "-s"], True, True, LOCALADDR, 0),
]
IDS = [" ".join(argv) or "(none)" for argv, *_ in COMBINATIONS]


@pytest.mark.parametrize(("argv", "dev", "tls", "host", "port"), COMBINATIONS, ids=IDS)
def test_parse_in_any_order(argv, dev, tls, host, port) -> None:
    expected = Launch(dev=dev, tls=tls, host=host, port=port)
    assert parse(argv) == expected
    assert parse(list(reversed(argv))) == expected


def test_extra_options() -> None:
    launch = parse(["--workers", "3", "127.0.0.1:0", "--state-dir", "/tmp/x", "--seed-compat"])
    assert (launch.workers, launch.state_dir, launch.seed_compat) == (3, Path("/tmp/x"), True)
    assert parse(["[::1]:8080"]).host == "::1"


def test_localaddr_is_an_address_of_this_machine() -> None:
    address = local_address()
    with socket.socket() as probe:  # bindable ⇔ one of ours (bound, never listening)
        probe.bind((address, 0))


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the server does: connections lingering in TIME_WAIT do not make it busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize(("argv", "dev", "tls", "host", "port"), COMBINATIONS, ids=IDS)
async def test_combination_serves(http, argv, dev, tls, host, port) -> None:
    if port == DEFAULT_PORT and not port_free(DEFAULT_PORT):
        pytest.skip(f"port {DEFAULT_PORT} is taken on this machine")
    # An extra option keeps argv non-empty, so "(none)" is not start_server's default.
    with start_server(*argv, "--workers", "2") as live:
        scheme = "https" if tls else "http"
        assert live.url.startswith(f"{scheme}://127.0.0.1:")
        bound = int(live.url.rsplit(":", 1)[1])
        assert bound == port if port else bound > 0
        status, body, _ = await call(http, live, "GET", "/list_nn")
        assert status == 200 and body["text"] == LISTED
        workers = set()
        for _ in range(8 if not dev else 2):
            _, ready, _ = await call(http, live, "GET", "/ready")
            workers.add(ready["worker"])
        if dev:  # one process: the server itself answers
            assert workers == {live.process.pid}
        else:
            assert live.process.pid not in workers
        if tls:
            assert_tls_files(live)
            assert "(development server" in live.output() if dev else "2 workers" in live.output()


def assert_tls_files(live: LiveServer) -> None:
    assert live.cafile is not None
    key = live.cafile.with_name("key.pem")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Verification against the generated certificate is what aiohttp just did; a client
    # that does not trust it must fail.
    with pytest.raises(ssl.SSLCertVerificationError):
        host, port = live.url.removeprefix("https://").rsplit(":", 1)
        with socket.create_connection((host, int(port))) as raw:
            ssl.create_default_context().wrap_socket(raw, server_hostname=host)


async def test_users_own_certificate(http, tmp_path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    with start_server("-s", "-d", "127.0.0.1:0", "--cert", str(cert_file), "--key",
                      str(key_file), cafile=ca_file) as live:
        status, _, _ = await call(http, live, "GET", "/list_nn")
        assert status == 200
        assert not (live.state_dir.parent / "ssl" / "cert.pem").exists()


BAD_ARGUMENTS = [
    ["-x"], ["127.0.0.1"], ["127.0.0.1:http"], ["127.0.0.1:70000"], ["a b:5000"],
    ["127.0.0.1:0", "127.0.0.1:1"], ["--workers", "0"], ["--cert", "c.pem"],
]


@pytest.mark.parametrize("argv", BAD_ARGUMENTS, ids=[" ".join(a) for a in BAD_ARGUMENTS])
def test_bad_arguments_print_usage_and_exit_2(argv) -> None:
    done = subprocess.run([sys.executable, "-m", "nn_server", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: python -m nn_server")
    assert "Traceback" not in done.stderr + done.stdout


def test_bad_environment_is_a_clear_error() -> None:
    env = {**os.environ, "NN_MAX_BODY": "lots"}
    done = subprocess.run([sys.executable, "-m", "nn_server", "-d", "127.0.0.1:0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 2
    assert "NN_MAX_BODY" in done.stderr and "Traceback" not in done.stderr


def test_default_credentials_warning_on_a_public_address(capsys) -> None:
    from nn_server.web.main import is_loopback, warn_default_credentials

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("192.0.2.2") and not is_loopback("0.0.0.0")
    warn_default_credentials("0.0.0.0")
    assert "WARNING: the default credentials" in capsys.readouterr().err
