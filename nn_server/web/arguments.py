"""The server's command line: ``python -m nn_server [-d] [-s] [host:port | localaddr:port]``.

Parsing only: turns ``argv`` into a ``Launch`` (or exits 2 with the usage message, as
argparse does); nothing here binds, prints or starts anything.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from nn_server.core.addresses import bind_address, local_address

DEFAULT_PORT = 5000
LOOPBACK = "127.0.0.1"
LOCALADDR = "localaddr"

USAGE = "python -m nn_server [-d] [-s] [host:port | localaddr:port] [options]"
DESCRIPTION = """\
Serve the neural networks over HTTP(S).

address: host:port, or localaddr:port for this machine's LAN address (127.0.0.1 when there
is none); port 0 picks a free port. Defaults: localaddr:5000, or 127.0.0.1:5000 with -d.
Environment variables NN_* configure the rest (see README.md, "The server")."""


@dataclass(frozen=True)
class Launch:
    """What the command line asked for."""

    dev: bool
    tls: bool
    host: str
    """An address or host name, or ``LOCALADDR`` (resolved by ``resolve_host``)."""
    port: int
    workers: int | None = None
    state_dir: Path | None = None
    seed_compat: bool = False
    cert: Path | None = None
    key: Path | None = None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nn_server", usage=USAGE, description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("address", nargs="?", default=None,
                   help="host:port or localaddr:port (port 0: any free port)")
    p.add_argument("-d", "--dev", action="store_true",
                   help="development server: debug mode, one process")
    p.add_argument("-s", "--ssl", action="store_true",
                   help="HTTPS with the certificate in ssl/ (self-signed, made on first use)")
    p.add_argument("--workers", type=positive, default=None, metavar="N",
                   help="worker processes in production mode (default: $NN_WORKERS or one "
                        "per CPU)")
    p.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                   help="status, weights and lock (default: $NN_STATE_DIR or "
                        "~/.local/state/nn-server)")
    p.add_argument("--seed-compat", action="store_true",
                   help="while a network trains, answer its train/status/classify with a "
                        "'network is training' error (503), as the original server did")
    p.add_argument("--cert", type=Path, default=None, metavar="FILE",
                   help="your own certificate chain for -s (with --key)")
    p.add_argument("--key", type=Path, default=None, metavar="FILE",
                   help="the private key for --cert")
    return p


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def parse(argv: list[str]) -> Launch:
    """``argv`` (without the program name) → ``Launch``; exits 2 with usage when wrong."""
    p = parser()
    args = p.parse_args(argv)
    if (args.cert is None) != (args.key is None):
        p.error("--cert and --key go together")
    if args.address is None:
        host, port = (LOOPBACK if args.dev else LOCALADDR), DEFAULT_PORT
    else:
        try:
            host, port = bind_address(args.address)
        except ValueError as exc:
            p.error(str(exc))
    return Launch(
        dev=args.dev, tls=args.ssl, host=host, port=port, workers=args.workers,
        state_dir=args.state_dir, seed_compat=args.seed_compat, cert=args.cert, key=args.key,
    )


def resolve_host(host: str, override: str | None = None) -> str:
    """``localaddr`` → ``override`` (``NN_LOCALADDR``) or the detected LAN address."""
    if host != LOCALADDR:
        return host
    return override or local_address()
