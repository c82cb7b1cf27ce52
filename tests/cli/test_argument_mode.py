"""``python cli.py host:port network operation [file]`` against the real server."""

from __future__ import annotations

import asyncio
import io
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from cli_harness import ROOT, SAMPLES, address, run_cli, run_process

from nn_sdk import NNClient

ANSWER = re.compile(r"Answer: (\S+)")


def answer(output: str) -> str:
    match = ANSWER.search(output)
    assert match, output
    return match.group(1)


@pytest.mark.parametrize("image", SAMPLES, ids=[p.name for p in SAMPLES])
def test_classify_prints_the_right_digit(shipped_server: Any, image: Path) -> None:
    result = run_cli(address(shipped_server), "lenet", "classify", str(image))
    assert result.code == 0, result.err
    assert answer(result.out) == image.name[0]
    assert "(confidence" in result.out and result.err == ""


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".tiff"])
def test_classify_as_a_real_process(shipped_server: Any, suffix: str) -> None:
    image = next((p for p in SAMPLES if p.suffix == suffix), None)
    assert image is not None, f"images/ must hold a *{suffix} sample"
    relative = str(image.relative_to(ROOT))  # as the user types it: images/7_pen.jpg
    result = run_process(address(shipped_server), "lenet", "classify", relative)
    assert result.code == 0, result.err
    assert answer(result.out) == image.name[0]
    assert "\x1b[" not in result.out  # piped: no colour codes, still readable


def test_classify_without_a_file_asks_for_one_of_images(
    shipped_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("nonsense\n99\n1\n"))  # two bad answers first
    result = run_cli(address(shipped_server), "lenet", "classify")
    assert result.code == 0, result.err
    assert SAMPLES[0].name in result.out and "No such file: 'nonsense'" in result.out
    assert answer(result.out) == SAMPLES[0].name[0]


def test_classify_without_a_file_and_no_answer(
    shipped_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    result = run_cli(address(shipped_server), "lenet", "classify")
    assert (result.code, result.err) == (1, "error: no image chosen\n")


def test_list_nn(shipped_server: Any) -> None:
    result = run_cli(address(shipped_server), "list_nn")
    assert result.code == 0 and re.search(r"lenet\s.*LeNet\s.*/lenet", result.out)


def test_about(shipped_server: Any) -> None:
    result = run_cli(address(shipped_server), "lenet", "about")
    assert result.code == 0 and "LeNet" in result.out
    assert "labels: 0 1 2 3 4 5 6 7 8 9" in result.out


def test_status(shipped_server: Any) -> None:
    result = run_cli(address(shipped_server), "lenet", "status")
    assert result.code == 0
    assert re.search(r"state\s+idle", result.out)
    assert re.search(r"accuracy\s+\d+\.\d\d %", result.out)


def test_train_over_https(tls_training_server: Any) -> None:
    host, cafile = address(tls_training_server), str(tls_training_server.cafile)
    result = run_cli(host, "--cafile", cafile, "lenet", "train")
    assert result.code == 0, result.err
    assert "Training of LeNet started." in result.out
    again = run_cli(host, "--cafile", cafile, "lenet", "train")
    assert again.code == 1 and again.err.startswith("error: ") and again.err.count("\n") == 1

    followed = run_cli(host, "--cafile", cafile, "lenet", "status")
    assert re.search(r"state\s+training", followed.out), followed.out

    async def wait() -> None:
        async with NNClient(tls_training_server.url, verify=cafile) as client:
            await client.wait_for_training(poll_interval=0.2, timeout=240)

    asyncio.run(wait())  # leave the server idle for the next test


def test_train_and_wait_shows_progress(tls_training_server: Any) -> None:
    result = run_cli(address(tls_training_server), "--cafile", str(tls_training_server.cafile),
                     "--poll-interval", "0.2", "lenet", "train", "--wait")
    assert result.code == 0, result.err
    assert "Training of lenet finished." in result.out
    assert re.search(r"state\s+idle", result.out)


def test_insecure_https(tls_training_server: Any) -> None:
    result = run_cli(address(tls_training_server), "--insecure", "list_nn")
    assert result.code == 0 and "lenet" in result.out


# -- errors: one line on stderr, exit status 1, no traceback ------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_server() -> None:
    port = _closed_port()
    result = run_process(f"127.0.0.1:{port}", "list_nn")
    assert result.code == 1 and result.out == ""
    assert result.err == f"error: cannot connect to http://127.0.0.1:{port}: connection refused\n"


def test_bad_credentials(shipped_server: Any) -> None:
    result = run_process(address(shipped_server), "lenet", "status", NN_PASSWORD="wrong")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("error: authentication failed for user 'test_nn'")
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_unknown_network(shipped_server: Any) -> None:
    result = run_process(address(shipped_server), "resnet", "about")
    assert result.code == 1 and result.err.startswith("error: ") and "resnet" in result.err
    assert result.err.count("\n") == 1


def test_unknown_operation() -> None:
    result = run_process("127.0.0.1:1", "lenet", "paint")
    assert result.code == 1 and result.err.count("\n") == 1 and "unknown operation" in result.err


def test_untrusted_certificate(tls_training_server: Any) -> None:
    result = run_cli(address(tls_training_server), "--https", "list_nn")
    assert result.code == 1 and "certificate is not trusted" in result.err
    assert result.err.count("\n") == 1


def test_missing_file(shipped_server: Any) -> None:
    result = run_cli(address(shipped_server), "lenet", "classify", "no/such.png")
    assert result.code == 1 and result.err.startswith("error: cannot read no/such.png")


def test_unsupported_file(shipped_server: Any) -> None:
    result = run_cli(address(shipped_server), "lenet", "classify", __file__)
    assert result.code == 1 and "is not a JPEG, PNG, BMP or TIFF image" in result.err


def test_bad_option_value_is_one_line_not_a_traceback() -> None:
    result = run_process("--user", "a:b", "127.0.0.1:1", "list_nn")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert "Traceback" not in result.err
