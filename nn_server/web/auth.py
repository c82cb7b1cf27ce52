"""HTTP Basic authentication against salted, slow password hashes, and the users' roles.

Users come from ``NN_USERS_FILE`` (one ``user:hash:role`` per line, ``#`` comments) and
``NN_USERS`` (comma-separated entries); with neither, the seed's ``test_nn`` / ``lenet`` is
the only user, an admin. A line is made with

    python -m nn_server.web.auth [--role admin|user] USER    # asks for the password

A role is ``admin`` (may also train and choose what is served: the routes marked
``ctx_changes_state``) or ``user`` (reads and classifies). An entry without a role, written
before roles existed, is an admin: everyone could train then, and an old file keeps working
as it did. Every entry is checked when the server starts; one it cannot read stops it.

Verifying a password costs a deliberate ~50 ms of scrypt, so it runs off the event loop,
and a successfully verified ``Authorization`` header is remembered (keyed by an HMAC
with a per-process secret, so the cache holds no credentials) and costs a dict lookup
afterwards. Unknown users are checked against a dummy hash, so timing does not reveal
which user names exist; comparisons are constant-time.
"""

from __future__ import annotations

import argparse
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
SCRYPT_MAXMEM = 64 * 1024 * 1024
DIGEST_SIZE = 32
CACHE_SIZE = 1024
ADMIN, USER = "admin", "user"
ROLES = (ADMIN, USER)
LEGACY_ROLE = ADMIN
"""The role of an entry without one (written before roles existed, when anyone could
train)."""
HOW_TO = "make one with `python -m nn_server.web.auth USER`"


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
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM,
                          dklen=DIGEST_SIZE)


def hash_problem(stored: str) -> str | None:
    """What is wrong with a stored hash (so that no password could ever match it), or None.
    Checked at start-up: a typo in the users file must not lock a user out silently."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return f"the hash is not {SCHEME}$N$r$p$SALT$HASH"
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return "the hash has a cost that is not a number, or salt or hash not in base64"
    if n < 2 or n & (n - 1) or r < 1 or p < 1:
        return "the hash's cost N must be a power of two, r and p at least 1"
    if 128 * r * (n + p + 2) > SCRYPT_MAXMEM:  # OpenSSL's own estimate
        return f"the hash's cost needs more than {SCRYPT_MAXMEM // 2**20} MiB per check"
    if not salt or len(digest) != DIGEST_SIZE:
        return f"the hash's salt is empty or its hash is not {DIGEST_SIZE} bytes"
    return None


@dataclass(frozen=True)
class Account:
    """One configured user: the stored hash and what the user may do."""

    hash: str
    role: str = LEGACY_ROLE


def parse_users(text: str, source: str) -> dict[str, Account]:
    """``user:hash[:role]`` entries (lines or commas) → {user: Account}; ``UsersError``
    names the first entry that is not one."""
    users: dict[str, Account] = {}
    for number, raw in enumerate(text.replace(",", "\n").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, rest = line.partition(":")
        stored, _, role = rest.partition(":")
        where = f"{source}, entry {number}" + (f" ({name!r})" if name else "")
        if not sep or not name or not stored:
            raise UsersError(f"{where}: expected USER:{SCHEME}$...[:ROLE] ({HOW_TO})")
        if not valid_name(name):
            raise UsersError(f"{where}: a user name has no spaces or control characters")
        if problem := hash_problem(stored):
            raise UsersError(f"{where}: {problem} ({HOW_TO})")
        if role and role not in ROLES:
            raise UsersError(f"{where}: the role is {role!r}; it must be admin or user")
        users[name] = Account(stored, role or LEGACY_ROLE)
    return users


def valid_name(name: str) -> bool:
    return name.isprintable() and not any(c.isspace() for c in name)


def permission_warning(users_file: Path) -> str | None:
    """A warning when other users of the machine may read or change the users file: its
    hashes can be guessed offline, and whoever can write it can make themselves admin."""
    try:
        mode = users_file.stat().st_mode & 0o777
    except OSError:
        return None
    if not mode & 0o066:
        return None
    return (f"users file {users_file} can be read or changed by other users (mode {mode:o}); "
            f"`chmod 600 {users_file}`")


def load_users(users_file: Path | None, users: str | None) -> dict[str, Account] | None:
    """The configured users, or None when none are configured (the default user applies)."""
    found: dict[str, Account] = {}
    if users_file is not None:
        try:
            found.update(parse_users(users_file.read_text(), str(users_file)))
        except OSError as exc:
            raise UsersError(f"cannot read users file {users_file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsersError(f"users file {users_file} is not UTF-8 text") from None
    if users:
        found.update(parse_users(users, "NN_USERS"))
    return found or None


@dataclass
class Authenticator:
    """Checks ``Authorization`` headers; one per worker process."""

    users: dict[str, Account]
    uses_default: bool = False
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _dummy: str = field(default_factory=lambda: hash_password(secrets.token_hex(8)))
    _verified: OrderedDict[bytes, str] = field(default_factory=OrderedDict)

    @classmethod
    def configured(cls, users_file: Path | None, users: str | None) -> Authenticator:
        found = load_users(users_file, users)
        if found is None:
            default = Account(hash_password(DEFAULT_PASSWORD), ADMIN)
            return cls({DEFAULT_USER: default}, uses_default=True)
        return cls(found)

    def role_of(self, name: str) -> str:
        return self.users[name].role

    def cached(self, header: str) -> str | None:
        """The user a header was already verified for (the hot path: no hashing)."""
        return self._verified.get(self.fingerprint(header))

    def verify(self, header: str) -> str | None:
        """The user a ``Basic`` header authenticates, or None. Slow: call off the loop."""
        credentials = decode_basic(header)
        if credentials is None:
            return None
        name, password = credentials
        account = self.users.get(name)
        ok = verify_password(password, account.hash if account is not None else self._dummy)
        if not ok or account is None:
            return None
        self._remember(header, name)
        return name

    def fingerprint(self, header: str) -> bytes:
        # Sanic decodes header bytes that are not UTF-8 as surrogates; keep them as bytes.
        return hmac.new(self._key, header.encode("utf-8", "surrogateescape"),
                        hashlib.sha256).digest()

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
    parser = argparse.ArgumentParser(
        prog="python -m nn_server.web.auth",
        description="Print USER:<hash>:<role>, a line for NN_USERS_FILE.")
    parser.add_argument("user")
    parser.add_argument("--role", choices=ROLES, default=USER,
                        help="admin: may also train and choose the served weights "
                             "(default: user, who reads and classifies)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if ":" in args.user or args.user.startswith("-") or not valid_name(args.user):
        parser.error("a user name has no colon, spaces or control characters")
    password = getpass.getpass(f"password for {args.user}: ")
    if password != getpass.getpass("again: "):
        print("passwords differ", file=sys.stderr)
        return 1
    print(f"{args.user}:{hash_password(password)}:{args.role}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
