"""The MNIST data set: the four standard IDX files, verified, downloaded when missing.

The files are read from a directory (``NN_DATA_DIR``, default ``~/.cache/nn-server/mnist``),
gzip-compressed or raw. Each file's decompressed contents must match the canonical SHA-256
digest, so a download from any mirror can be trusted and a truncated file is caught before
numpy ever sees it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DATA_DIR_ENV = "NN_DATA_DIR"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "nn-server" / "mnist"

# Digests of the decompressed files, as published for the canonical MNIST set.
DIGESTS: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Public mirrors serving the gzip files under their standard names, tried in order.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
IDX_MAGIC_IMAGES = 0x00000803
IDX_MAGIC_LABELS = 0x00000801

ProgressCallback = Callable[[str, int, int | None], None]
"""Called as ``progress(file_name, bytes_so_far, total_bytes_or_None)`` while downloading."""


class DataError(Exception):
    """The data set is missing, corrupt or could not be fetched; the message says what to do."""


@dataclass(frozen=True)
class Split:
    """One split of MNIST: ``images`` uint8 (N, 28, 28), ``labels`` uint8 (N,)."""

    images: NDArray[np.uint8]
    labels: NDArray[np.uint8]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The directory to read: ``explicit``, else ``$NN_DATA_DIR``, else the per-user cache."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


def find_file(directory: Path, name: str) -> Path | None:
    """The gzip or raw copy of ``name`` in ``directory``, preferring gzip; None if neither."""
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def read_verified(path: Path, name: str) -> bytes:
    """The decompressed contents of ``path``, checked against the digest of ``name``."""
    try:
        raw = path.read_bytes()
        content = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as exc:  # zlib: damage inside the deflate stream
        raise DataError(f"{path} is corrupt or truncated ({exc}); delete it and retry") from exc
    digest = hashlib.sha256(content).hexdigest()
    if digest != DIGESTS[name]:
        raise DataError(
            f"{path} does not match the canonical MNIST file {name} "
            f"(sha256 {digest[:12]}…, expected {DIGESTS[name][:12]}…); delete it and retry"
        )
    return content


def parse_idx(content: bytes, name: str) -> NDArray[np.uint8]:
    """Turn verified IDX bytes into a uint8 array (images: N×28×28, labels: N)."""
    magic, count = struct.unpack(">II", content[:8])
    if magic == IDX_MAGIC_IMAGES:
        rows, cols = struct.unpack(">II", content[8:16])
        return np.frombuffer(content, np.uint8, offset=16).reshape(count, rows, cols)
    if magic == IDX_MAGIC_LABELS:
        return np.frombuffer(content, np.uint8, offset=8).reshape(count)
    raise DataError(f"{name} is not an IDX file (magic {magic:#010x})")


def download(
    name: str,
    directory: Path,
    mirrors: Sequence[str] = MIRRORS,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch ``name``.gz from the first mirror that serves a file with the right digest.

    The file is written to a temporary name and moved into place only once verified, so an
    interrupted download never leaves a half file that looks complete.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.gz"
    failures: list[str] = []
    for mirror in mirrors:
        url = mirror + f"{name}.gz"
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
        tmp = Path(tmp_name)
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the data set from other users
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                done = 0
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(name, done, total)
            read_verified(tmp, name)
            os.replace(tmp, target)
            return target
        except (OSError, urllib.error.URLError, DataError) as exc:
            failures.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(
        f"could not download {name}.gz ({'; '.join(failures)}). Without network access, "
        f"copy the four MNIST files ({', '.join(DIGESTS)}, .gz or raw) into {directory} "
        f"or point {DATA_DIR_ENV} at a directory that holds them"
    )


def load_split(
    split: str,
    directory: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = True,
    mirrors: Sequence[str] = MIRRORS,
    progress: ProgressCallback | None = None,
) -> Split:
    """Load ``"train"`` or ``"test"``, downloading missing files when allowed."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    root = data_dir(directory)
    arrays: list[NDArray[np.uint8]] = []
    for name in SPLITS[split]:
        path = find_file(root, name)
        if path is None:
            if not allow_download:
                raise DataError(
                    f"{name} not found in {root}: put the MNIST files there or point "
                    f"{DATA_DIR_ENV} at a directory that holds them"
                )
            path = download(name, root, mirrors, progress)
        content = read_verified(path, name)
        arrays.append(parse_idx(content, name))
    images, labels = arrays
    if images.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{split} images and labels disagree: {images.shape} vs {labels.shape}")
    return Split(images=images, labels=labels)
