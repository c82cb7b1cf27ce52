"""Where a server's state lives, as its configuration names it (``NN_STATE_DIR``,
``NN_STATE_URL``, ``NN_WEIGHTS_URL``, ``NN_REPLICA``): one value that the workers, the trainer
and ``nn_server.store.open_store`` share. Pure parsing; nothing here connects anywhere.

    NN_STATE_URL    unset or file://DIR   the local store (one machine, today's behaviour)
                    redis://HOST:PORT/DB  coordination in Redis (lease, status, pointer,
                                          pub/sub), for replicas on many machines
    NN_WEIGHTS_URL  file://DIR            weights in a shared directory (NFS, an RWX volume)
                    s3://BUCKET/PREFIX    weights in S3 or anything that speaks it (MinIO,
                                          Ceph): endpoint from AWS_ENDPOINT_URL
"""

from __future__ import annotations

import re
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

REDIS_SCHEMES = ("redis", "rediss")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
"""S3's rule for bucket names (3-63 lower-case letters, digits, dots, hyphens)."""


class LocationError(ValueError):
    """A state or weights URL this server cannot use; the message names the variable."""


@dataclass(frozen=True)
class StoreLocation:
    """The state directory (always local: caches, scratch space, metrics) and, for a
    cluster, where its coordination state and its weights live."""

    state_dir: Path
    state_url: str | None = None
    """``redis://...`` for a cluster; None: everything is in ``state_dir``."""
    weights_url: str | None = None
    """``file://DIR`` or ``s3://BUCKET/PREFIX`` (a cluster only); None: ``state_dir``."""
    replica: str = ""
    """This replica's name, shown in the training status of a cluster (``NN_REPLICA``)."""

    @property
    def clustered(self) -> bool:
        return self.state_url is not None

    @property
    def weights(self) -> str:
        """The weights store's URL (a cluster's default: the state directory)."""
        return self.weights_url or f"file://{self.state_dir}"

    def describe(self) -> str:
        """For messages: where the state is."""
        if self.state_url is None:
            return f"state directory {self.state_dir}"
        return f"state {redact(self.state_url)} with weights in {self.weights}"


def parse_locations(state_dir: Path, state_url: str | None, weights_url: str | None,
                    replica: str | None) -> StoreLocation:
    """The location the variables name; raises ``LocationError`` with one line."""
    if state_url:
        scheme = urllib.parse.urlsplit(state_url).scheme
        if scheme == "file":
            state_dir, state_url = file_path("NN_STATE_URL", state_url), None
        elif scheme in REDIS_SCHEMES:
            check_redis(state_url)
        else:
            raise LocationError(f"NN_STATE_URL={redact(state_url)}: expected file://DIR or "
                                "redis://HOST:PORT/DB")
    else:
        state_url = None
    if weights_url:
        scheme = urllib.parse.urlsplit(weights_url).scheme
        if scheme == "file":
            weights_url = f"file://{file_path('NN_WEIGHTS_URL', weights_url)}"
        elif scheme == "s3":
            s3_bucket(weights_url)
        else:
            raise LocationError(f"NN_WEIGHTS_URL={weights_url}: expected file://DIR or "
                                "s3://BUCKET/PREFIX")
        if state_url is None:
            raise LocationError(f"NN_WEIGHTS_URL={weights_url} is for replicas that share "
                                "state: set NN_STATE_URL=redis://HOST:PORT/DB too (a single "
                                "server keeps its weights in NN_STATE_DIR)")
    else:
        weights_url = None
    return StoreLocation(state_dir, state_url, weights_url, replica or socket.gethostname())


def file_path(variable: str, url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise LocationError(f"{variable}={url}: expected file:///ABSOLUTE/PATH")
    return Path(urllib.parse.unquote(parts.path))


def check_redis(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 (reading it is the check)
    except ValueError:
        raise LocationError(f"NN_STATE_URL={redact(url)}: the port is not a number") from None
    if not parts.hostname:
        raise LocationError(f"NN_STATE_URL={redact(url)}: no host (redis://HOST:PORT/DB)")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise LocationError(f"NN_STATE_URL={redact(url)}: the database must be a number")


def s3_bucket(url: str) -> tuple[str, str]:
    """The bucket and the key prefix (no slashes at its ends) of ``s3://BUCKET/PREFIX``."""
    parts = urllib.parse.urlsplit(url)
    if not BUCKET.match(parts.netloc):
        raise LocationError(f"NN_WEIGHTS_URL={url}: {parts.netloc!r} is not an S3 bucket "
                            "name (3-63 lower-case letters, digits, dots and hyphens)")
    return parts.netloc, parts.path.strip("/")


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
