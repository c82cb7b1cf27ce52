"""HTTPS for ``-s``: the user's own certificate, or a self-signed one made on first use.

The self-signed certificate lives in ``ssl/`` (``cert.pem``, ``key.pem``; the key 0600)
and names every host it is served under plus ``localhost`` and ``127.0.0.1``. When the
server is started under a name the existing certificate does not cover, a new one is
made for the old names and the new together, so clients that trusted the old one learn
the new certificate once.

    python -m nn_server.web.tls [HOST ...]    # make (or extend) the certificate now
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import sys
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nn_server.core.files import write_atomic

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
ALWAYS = ("localhost", "127.0.0.1")
VALID_DAYS = 825  # the longest validity Apple and browsers accept for a server certificate


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS server context for ``cert`` and ``key`` (raises ``ssl.SSLError``/``OSError``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def self_signed(ssl_dir: Path, hosts: Iterable[str]) -> tuple[Path, Path]:
    """``(cert, key)`` in ``ssl_dir`` covering ``hosts``; made or remade when needed."""
    cert_path, key_path = ssl_dir / CERT_NAME, ssl_dir / KEY_NAME
    wanted = {h for h in (*ALWAYS, *hosts) if h and h not in ("0.0.0.0", "::")}
    covered = names_in(cert_path) if key_path.exists() else set()
    if wanted <= covered and pair_matches(cert_path, key_path):
        return cert_path, key_path
    write_self_signed(cert_path, key_path, sorted(wanted | covered))
    return cert_path, key_path


def pair_matches(cert_path: Path, key_path: Path) -> bool:
    """Whether the key belongs to the certificate (a half-finished earlier write may not)."""
    try:
        server_context(cert_path, key_path)
    except (OSError, ssl.SSLError):
        return False
    return True


def names_in(cert_path: Path) -> set[str]:
    """The DNS names and IP addresses a certificate covers (empty if unreadable)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return set()
    if cert.not_valid_after_utc <= dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        return set()
    names = set(san.get_values_for_type(x509.DNSName))
    names |= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return names


def write_self_signed(cert_path: Path, key_path: Path, hosts: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"nn-server {hosts[0]}")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                       critical=False)
        # CA:TRUE lets clients use the certificate itself as their trust anchor (cafile).
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Each file is replaced whole; the key is 0600 before any secret is written into it.
    write_atomic(key_path, key_bytes, mode=0o600)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def main(argv: list[str] | None = None) -> int:
    from nn_server.core.config import Config

    hosts = sys.argv[1:] if argv is None else argv
    cert, key = self_signed(Config.from_env().tls_dir, hosts)
    print(f"certificate {cert}\nkey         {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
