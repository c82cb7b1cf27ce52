"""HTTP Basic authentication against salted, slow password hashes.

Users come from ``NN_USERS_FILE`` (one ``user:hash`` per line, ``#`` comments) and
``NN_USERS`` (comma-separated ``user:hash``); with neither, the seed's ``test_nn`` /
``lenet`` is the only user. A hash line is made with

    python -m nn_server.auth USER        # asks for the password, prints USER:scrypt$...

Verifying a password costs a deliberate ~50 ms of scrypt, so it runs off the event loop,
and a successfully verified ``Authorization`` header is remembered (keyed by an HMAC
with a per-process secret, so the cache holds no credentials) and costs a dict lookup
afterwards. Unknown users are checked against a dummy hash, so timing does not reveal
which user names exist; comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import secrets
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_USER = "test_nn"
DEFAULT_PASSWORD = "lenet"
SCHEME = "scrypt"
# scrypt cost: 16 MiB and ~50 ms per check, so a stolen users file resists guessing.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
CACHE_SIZE = 1024


class UsersError(ValueError):
    """The users file or NN_USERS has an entry we cannot read; the message says where."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$<salt b64>$<hash b64>``, the form stored in users files."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join([
        SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
        base64.b64encode(salt).decode(), base64.b64encode(digest).decode(),
    ])


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a ``hash_password`` result)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024,
                          dklen=32)


def parse_users(text: str, source: str) -> dict[str, str]:
    """``user:hash`` entries (lines or commas) → {user: hash}."""
    users: dict[str, str] = {}
    for number, raw in enumerate(text.replace(",", "\n").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not name or not stored.startswith(SCHEME + "$"):
            raise UsersError(
                f"{source}, entry {number}: expected USER:{SCHEME}$... "
                "(make one with `python -m nn_server.auth USER`)"
            )
        users[name] = stored
    return users


def load_users(users_file: Path | None, users: str | None) -> dict[str, str] | None:
    """The configured users, or None when none are configured (the default user applies)."""
    found: dict[str, str] = {}
    if users_file is not None:
        try:
            found.update(parse_users(users_file.read_text(), str(users_file)))
        except OSError as exc:
            raise UsersError(f"cannot read users file {users_file}: {exc.strerror}") from None
    if users:
        found.update(parse_users(users, "NN_USERS"))
    return found or None


@dataclass
class Authenticator:
    """Checks ``Authorization`` headers; one per worker process."""

    users: dict[str, str]
    uses_default: bool = False
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _dummy: str = field(default_factory=lambda: hash_password(secrets.token_hex(8)))
    _verified: OrderedDict[bytes, str] = field(default_factory=OrderedDict)

    @classmethod
    def configured(cls, users_file: Path | None, users: str | None) -> Authenticator:
        found = load_users(users_file, users)
        if found is None:
            return cls({DEFAULT_USER: hash_password(DEFAULT_PASSWORD)}, uses_default=True)
        return cls(found)

    def cached(self, header: str) -> str | None:
        """The user a header was already verified for (the hot path: no hashing)."""
        return self._verified.get(self.fingerprint(header))

    def verify(self, header: str) -> str | None:
        """The user a ``Basic`` header authenticates, or None. Slow: call off the loop."""
        credentials = decode_basic(header)
        if credentials is None:
            return None
        name, password = credentials
        stored = self.users.get(name)
        ok = verify_password(password, stored if stored is not None else self._dummy)
        if not ok or stored is None:
            return None
        self._remember(header, name)
        return name

    def fingerprint(self, header: str) -> bytes:
        return hmac.new(self._key, header.encode(), hashlib.sha256).digest()

    def _remember(self, header: str, name: str) -> None:
        self._verified[self.fingerprint(header)] = name
        while len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)


def decode_basic(header: str) -> tuple[str, str] | None:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None


def main(argv: list[str] | None = None) -> int:
    """Print a users-file line for a user, asking for the password twice."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or ":" in args[0] or args[0].startswith("-"):
        print("usage: python -m nn_server.auth USER  (prints USER:<hash> for NN_USERS_FILE)",
              file=sys.stderr)
        return 2
    password = getpass.getpass(f"password for {args[0]}: ")
    if password != getpass.getpass("again: "):
        print("passwords differ", file=sys.stderr)
        return 1
    print(f"{args[0]}:{hash_password(password)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
