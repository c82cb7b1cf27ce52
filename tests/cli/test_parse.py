"""The command line: the seed's 14 argument forms, the flags, and usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import run_cli

from nn_cli.parse import OPERATIONS, Command, UsageError, parse
from nn_sdk import default_host

LOCAL = f"http://{default_host()}:5000"
HOST = "192.168.2.102:5000"
FILE = "my_folder/my_number.jpg"


@pytest.mark.parametrize(
    ("argv", "base_url", "network", "operation", "file"),
    [
        ([], LOCAL, None, None, None),                                     # 1: menu
        ([HOST], f"http://{HOST}", None, None, None),                      # 2: menu
        ([HOST, "list_nn"], f"http://{HOST}", "list_nn", None, None),      # 3
        ([HOST, "lenet", "classify"], f"http://{HOST}", "lenet", "classify", None),  # 4
        ([HOST, "lenet", "classify", FILE], f"http://{HOST}", "lenet", "classify", FILE),  # 5
        ([HOST, "lenet", "status"], f"http://{HOST}", "lenet", "status", None),  # 6
        ([HOST, "lenet", "about"], f"http://{HOST}", "lenet", "about", None),  # 7
        ([HOST, "lenet", "train"], f"http://{HOST}", "lenet", "train", None),  # 8
        (["list_nn"], LOCAL, "list_nn", None, None),                       # 9
        (["lenet", "classify"], LOCAL, "lenet", "classify", None),         # 10
        (["lenet", "classify", FILE], LOCAL, "lenet", "classify", FILE),   # 11
        (["lenet", "status"], LOCAL, "lenet", "status", None),             # 12
        (["lenet", "about"], LOCAL, "lenet", "about", None),               # 13
        (["lenet", "train"], LOCAL, "lenet", "train", None),               # 14
    ],
)
def test_the_seeds_fourteen_forms(
    argv: list[str], base_url: str, network: str | None, operation: str | None, file: str | None
) -> None:
    command = parse(argv)
    assert (command.base_url, command.network, command.operation) == (base_url, network, operation)
    assert command.file == (Path(file) if file else None)


def test_credentials_from_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (parse([]).user, parse([]).password) == ("test_nn", "lenet")
    monkeypatch.setenv("NN_USER", "alice")
    monkeypatch.setenv("NN_PASSWORD", "s3cret")
    assert (parse([]).user, parse([]).password) == ("alice", "s3cret")
    command = parse(["--user", "bob", "lenet", "status", "--password", "pw"])  # flags anywhere
    assert (command.user, command.password, command.operation) == ("bob", "pw", "status")


def test_https_flags(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not checked until connecting")
    assert parse(["--https", HOST]).base_url == f"https://{HOST}"
    assert parse(["--https"]).base_url == LOCAL.replace("http:", "https:")
    command = parse([HOST, "--cafile", str(cert)])
    assert (command.base_url, command.verify) == (f"https://{HOST}", str(cert))
    command = parse([HOST, "--insecure", "list_nn"])
    assert (command.base_url, command.verify) == (f"https://{HOST}", False)
    assert parse([f"https://{HOST}", "list_nn"]).base_url == f"https://{HOST}"
    assert parse(["[::1]:8080", "list_nn"]).base_url == "http://[::1]:8080"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lenet"], "missing operation after 'lenet'"),
        (["lenet", "paint"], "unknown operation 'paint'"),
        (["list_nn", "about"], "list_nn takes no operation"),
        (["lenet", "status", "x.png"], "status takes nothing, got 'x.png'"),
        (["lenet", "classify", "a.png", "b.png"], "classify takes at most one file"),
        (["lenet", "serve"], "serve takes a version"),
        (["lenet", "export", "0123456789ab"], "export takes a version and a file name"),
        (["host:99999", "list_nn"], "port out of range"),
        (["--cafile", "/no/such.pem"], "certificate file not found"),
        (["--cafile", __file__, "--insecure"], "contradict"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(argv)


def test_usage_error_is_one_line_and_exit_1() -> None:
    result = run_cli("lenet", "paint")
    assert result.code == 1 and result.out == ""
    assert result.err == (
        "error: unknown operation 'paint': choose one of classify, status, about, train, "
        "versions, serve, export\n"
    )


def test_command_builds_a_configured_client() -> None:
    client = Command(base_url="https://h:1", user="u", password="p", verify=False).client()
    assert (str(client.base_url), client.user) == ("https://h:1", "u")
    assert OPERATIONS == ("classify", "status", "about", "train", "versions", "serve",
                              "export")


def test_client_and_server_agree_on_this_machines_address() -> None:
    from nn_sdk._config import local_address as client_side
    from nn_server.core.addresses import local_address as server_side

    assert client_side() == server_side()


def test_serve_and_export_take_their_arguments() -> None:
    serve = parse(["127.0.0.1:5000", "lenet", "serve", "0123456789ab"])
    assert (serve.operation, serve.version, serve.file) == ("serve", "0123456789ab", None)
    export = parse(["127.0.0.1:5000", "fashion", "export", "0123456789ab", "m.onnx"])
    assert (export.network, export.version, export.file) == ("fashion", "0123456789ab",
                                                              Path("m.onnx"))


@pytest.mark.parametrize(
    ("word", "base_url"),
    [
        ("nn_server:5000", "http://nn_server:5000"),
        ("HTTPS://nn.local:8443/", "https://nn.local:8443"),
        ("[fe80::1]:5000", "http://[fe80::1]:5000"),
    ],
)
def test_the_address_is_read_by_the_sdks_parser(word: str, base_url: str) -> None:
    assert parse([word, "list_nn"]).base_url == base_url


def test_a_word_that_is_not_an_address_is_the_network() -> None:
    for word in ("lenet", "ftp://h:1", "foo:bar"):
        with pytest.raises(UsageError, match=f"missing operation after '{word}'"):
            parse([word])
    with pytest.raises(UsageError, match="port out of range: 0"):  # a client needs a port
        parse(["127.0.0.1:0", "list_nn"])
    with pytest.raises(UsageError, match="host 'a b' is not an IP address or host name"):
        parse(["a b:5000", "list_nn"])
