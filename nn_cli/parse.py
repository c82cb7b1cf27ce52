"""Parsing: the command line → a ``Command``. Nothing here talks to a server or prints."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from nn_sdk import (
    DEFAULT_PASSWORD,
    DEFAULT_PORT,
    DEFAULT_USER,
    AddressError,
    NNClient,
    default_host,
    parse_address,
)

DESCRIPTION = """\
nn-server's terminal client: an interactive Rich menu, or the seed's argument mode.

    python cli.py                                    menu; server: this machine's LAN address:5000
    python cli.py [host:port]                        menu, that server
    python cli.py [host:port] list_nn                the server's networks
    python cli.py [host:port] lenet classify [FILE]  classify FILE (no FILE: pick one of images/)
    python cli.py [host:port] lenet status|about|train|versions
    python cli.py [host:port] lenet serve VERSION             serve that version (rollback)
    python cli.py [host:port] lenet export VERSION FILE.onnx  save that version as ONNX

Credentials: --user/--password, or NN_USER/NN_PASSWORD (default test_nn/lenet).
HTTPS: --https (system CAs), --cafile ssl/cert.pem (trust that certificate), --insecure."""

LIST_NETWORKS = "list_nn"
OPERATIONS = ("classify", "status", "about", "train", "versions", "serve", "export")
# What each operation takes after it: classify an optional file, serve a version, export a
# version and a file; the rest nothing.
ARGUMENTS = {"classify": (0, 1), "serve": (1, 1), "export": (2, 2)}
# The images the picker offers live beside cli.py, in the checkout.
IMAGES_DIR = Path(__file__).resolve().parents[1] / "images"


class UsageError(Exception):
    """The command line cannot be understood; the message says why, in one line."""


@dataclass(frozen=True)
class Command:
    """What the user asked for. ``network is None`` means the interactive menu."""

    base_url: str
    network: str | None = None
    operation: str | None = None
    file: Path | None = None
    version: str | None = None
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    verify: bool | str = True
    timeout: float = 30.0
    wait: bool = False
    poll_interval: float = 0.5
    images_dir: Path = IMAGES_DIR

    def client(self) -> NNClient:
        return NNClient(
            self.base_url,
            user=self.user,
            password=self.password,
            verify=self.verify,
            timeout=self.timeout,
        )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _parser() -> _Parser:
    parser = _Parser(
        prog="python cli.py",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("words", nargs="*", metavar="[host:port] [network operation [file]]")
    parser.add_argument("--user", default=os.environ.get("NN_USER", DEFAULT_USER),
                        help=f"user name (default: $NN_USER, else {DEFAULT_USER})")
    parser.add_argument("--password", default=os.environ.get("NN_PASSWORD", DEFAULT_PASSWORD),
                        help="password (default: $NN_PASSWORD, else the seed's)")
    parser.add_argument("--https", action="store_true", help="talk HTTPS")
    parser.add_argument("--cafile", type=Path,
                        help="trust this certificate (e.g. the server's ssl/cert.pem); "
                        "implies --https")
    parser.add_argument("--insecure", action="store_true",
                        help="HTTPS without checking the certificate; implies --https")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--wait", action="store_true",
                        help="train: follow the training with a progress bar until it ends")
    parser.add_argument("--poll-interval", type=float, default=0.5, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=Path, default=IMAGES_DIR,
                        help="where the image picker looks: images/<network>/ there, else "
                             "images/ itself (default: images/ beside cli.py)")
    return parser


def parse(argv: Sequence[str]) -> Command:
    """The ``Command`` for ``argv``; raises ``UsageError``."""
    args = _parser().parse_intermixed_args(list(argv))
    words: list[str] = list(args.words)
    scheme = "https" if (args.https or args.cafile or args.insecure) else "http"
    base_url = f"{scheme}://{default_host()}:{DEFAULT_PORT}"
    if words and (address := server_url(words[0], scheme)) is not None:
        words.pop(0)
        base_url = address
    if args.cafile is not None and args.insecure:
        raise UsageError("--cafile and --insecure contradict each other; choose one")
    verify: bool | str = True
    if args.cafile is not None:
        if not args.cafile.is_file():
            raise UsageError(f"certificate file not found: {args.cafile}")
        verify = str(args.cafile)
    elif args.insecure:
        verify = False
    command = Command(
        base_url=base_url, user=args.user, password=args.password, verify=verify,
        timeout=args.timeout, wait=args.wait, poll_interval=args.poll_interval,
        images_dir=args.images,
    )
    network, operation, arguments = _target(words)
    version = arguments[0] if operation in ("serve", "export") else None
    files = arguments[1:] if version is not None else arguments
    return replace(command, network=network, operation=operation, version=version,
                   file=Path(files[0]) if files else None)


def server_url(word: str, scheme: str) -> str | None:
    """The base URL when the first word is an address (``nn_sdk.parse_address``), ``None``
    when it is not one, which makes it the network's name."""
    try:
        address = parse_address(word)
    except AddressError as exc:
        # "name:digits" is meant as an address; a word without a numeric port is not one.
        if exc.part == "host":
            raise UsageError(str(exc)) from None
        if exc.part == "port" and exc.value.isascii() and exc.value.isdigit():
            raise UsageError(f"port out of range: {int(exc.value)}") from None
        return None
    if address.port == 0:  # "any free port" means something to a server only
        raise UsageError("port out of range: 0")
    return address.url(scheme)


def _target(words: list[str]) -> tuple[str | None, str | None, list[str]]:
    """network, operation and its arguments from the positional words (after host:port)."""
    if not words:
        return None, None, []
    network, rest = words[0], words[1:]
    if network == LIST_NETWORKS:
        if rest:
            raise UsageError(f"{LIST_NETWORKS} takes no operation, got {' '.join(rest)!r}")
        return network, None, []
    if not rest:
        raise UsageError(
            f"missing operation after {network!r}: choose one of {', '.join(OPERATIONS)}"
        )
    operation, extra = rest[0], rest[1:]
    if operation not in OPERATIONS:
        raise UsageError(
            f"unknown operation {operation!r}: choose one of {', '.join(OPERATIONS)}"
        )
    least, most = ARGUMENTS.get(operation, (0, 0))
    if not least <= len(extra) <= most:
        wanted = {"classify": "at most one file", "serve": "a version",
                  "export": "a version and a file name"}.get(operation, "nothing")
        got = f", got {' '.join(extra)!r}" if extra else ""
        raise UsageError(f"{operation} takes {wanted}{got}")
    return network, operation, extra
