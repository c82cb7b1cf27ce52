"""Files that other processes read — weights, their JSON records, status — and how they are
written: atomically (temp file + ``os.replace``), readable by others, timestamps in the seed's
``YYYY-MM-DD HH:MM:SS``.

Kept free of MXNet so that the server's main process, which only manages workers and state
files, never loads the framework (~230 MB of RSS).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
READABLE = 0o644
"""mkstemp creates 0600; these files are meant to be read by others (served, shipped)."""


def write_atomic(path: Path, data: bytes, mode: int = READABLE) -> None:
    """Write ``data`` so readers in other processes see the old file or the new, never half.
    The file has ``mode`` from its first byte (a private key is never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def weights_version(path: Path) -> str:
    """A short content hash of a weights file: equal weights ⇔ equal version everywhere."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
