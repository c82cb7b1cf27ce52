"""IDX image data sets (MNIST, Fashion-MNIST, ...): found, verified, downloaded when missing.

A ``Dataset`` is a value a network owns: the four standard IDX files, the SHA-256 of each
file's *decompressed* contents, the mirrors that serve the gzip files, and the folder it
lives in under the data directory (``NN_DATA_DIR``, default ``~/.cache/nn-server``)::

    <data dir>/mnist/train-images-idx3-ubyte.gz ...
    <data dir>/fashion-mnist/train-images-idx3-ubyte.gz ...

MNIST and Fashion-MNIST use the same file names, so each needs its own folder; a data
directory that itself holds one data set's files (the older flat layout) is recognised by
their digests. Files may be gzip-compressed or raw. Because every file is checked against
its digest, a download from any mirror can be trusted and a truncated file is caught before
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DATA_DIR_ENV = "NN_DATA_DIR"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "nn-server"
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FILES = tuple(name for pair in SPLITS.values() for name in pair)
# The smallest file: reading it tells which data set a folder holds, at almost no cost.
IDENTIFYING_FILE = "t10k-labels-idx1-ubyte"
IDX_MAGIC_IMAGES = 0x00000803
IDX_MAGIC_LABELS = 0x00000801

ProgressCallback = Callable[[str, int, int | None], None]
"""Called as ``progress(file_name, bytes_so_far, total_bytes_or_None)`` while downloading."""


class DataError(Exception):
    """The data set is missing, corrupt or could not be fetched; the message says what to do."""


@dataclass(frozen=True)
class Dataset:
    """One IDX data set: what its files are, how to check them, where to get them."""

    title: str
    """Human name, e.g. ``"Fashion-MNIST"``."""
    folder: str
    """Its folder under the data directory, e.g. ``"fashion-mnist"``."""
    digests: Mapping[str, str]
    """SHA-256 of each decompressed file, by standard file name (all four of ``FILES``)."""
    mirrors: tuple[str, ...]
    """Base URLs serving ``<file>.gz``, tried in order."""
    system_dirs: tuple[Path, ...] = ()
    """Folders a system package installs the files into, used when present."""

    def __post_init__(self) -> None:
        if set(self.digests) != set(FILES):
            raise ValueError(f"{self.title}: digests must name exactly {', '.join(FILES)}")


@dataclass(frozen=True)
class Split:
    """One split: ``images`` uint8 (N, H, W), ``labels`` uint8 (N,)."""

    images: NDArray[np.uint8]
    labels: NDArray[np.uint8]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def first(self, n: int | None) -> Split:
        """The first ``n`` samples (all of them for None): quick runs and tests."""
        return self if n is None else Split(self.images[:n], self.labels[:n])


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``explicit``, else ``$NN_DATA_DIR``, else the per-user cache."""
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


def decompressed(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as exc:  # zlib: damage inside the deflate stream
        raise DataError(f"{path} is corrupt or truncated ({exc}); delete it and retry") from exc


def read_verified(dataset: Dataset, path: Path, name: str) -> bytes:
    """The decompressed contents of ``path``, checked against the digest of ``name``."""
    content = decompressed(path)
    digest = hashlib.sha256(content).hexdigest()
    expected = dataset.digests[name]
    if digest != expected:
        raise DataError(
            f"{path} does not match the {dataset.title} file {name} "
            f"(sha256 {digest[:12]}…, expected {expected[:12]}…); delete it and retry"
        )
    return content


def holds(dataset: Dataset, directory: Path) -> bool:
    """Whether ``directory`` itself holds this data set's files (told by one small file)."""
    path = find_file(directory, IDENTIFYING_FILE)
    if path is None:
        return False
    try:
        content = decompressed(path)
    except DataError:
        return False
    return hashlib.sha256(content).hexdigest() == dataset.digests[IDENTIFYING_FILE]


def locate(dataset: Dataset, root: Path) -> Path:
    """The folder to read ``dataset`` from, and to download missing files into.

    ``root/<folder>`` when it exists; else ``root`` itself when it holds this data set's
    files (the flat layout); else a system package's folder that holds them; else
    ``root/<folder>``, where missing files will be downloaded.
    """
    own = root / dataset.folder
    if own.is_dir():
        return own
    if holds(dataset, root):
        return root
    for system in dataset.system_dirs:
        if all(find_file(system, name) for name in FILES):
            return system
    return own


def parse_idx(content: bytes, name: str) -> NDArray[np.uint8]:
    """Turn verified IDX bytes into a uint8 array (images: N×H×W, labels: N)."""
    magic, count = struct.unpack(">II", content[:8])
    if magic == IDX_MAGIC_IMAGES:
        rows, cols = struct.unpack(">II", content[8:16])
        return np.frombuffer(content, np.uint8, offset=16).reshape(count, rows, cols)
    if magic == IDX_MAGIC_LABELS:
        return np.frombuffer(content, np.uint8, offset=8).reshape(count)
    raise DataError(f"{name} is not an IDX file (magic {magic:#010x})")


def download(
    dataset: Dataset,
    name: str,
    directory: Path,
    mirrors: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch ``name``.gz from the first mirror that serves a file with the right digest.

    The file is written to a temporary name and moved into place only once verified, so an
    interrupted download never leaves a half file that looks complete.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {directory} for {dataset.title}: {exc.strerror}") from None
    target = directory / f"{name}.gz"
    failures: list[str] = []
    for mirror in dataset.mirrors if mirrors is None else mirrors:
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
            read_verified(dataset, tmp, name)
            os.replace(tmp, target)
            return target
        except (OSError, urllib.error.URLError, DataError) as exc:
            failures.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(
        f"could not download {name}.gz ({'; '.join(failures)}). Without network access, "
        f"copy the four {dataset.title} files ({', '.join(FILES)}, .gz or raw) into "
        f"{directory} or point {DATA_DIR_ENV} at a directory with a {dataset.folder}/ "
        "folder that holds them"
    )


def load_split(
    dataset: Dataset,
    split: str,
    directory: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = True,
    mirrors: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
) -> Split:
    """Load ``"train"`` or ``"test"`` of ``dataset``, downloading missing files when allowed."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    folder = locate(dataset, data_dir(directory))
    arrays: list[NDArray[np.uint8]] = []
    for name in SPLITS[split]:
        path = find_file(folder, name)
        if path is None:
            if not allow_download:
                raise DataError(
                    f"{name} not found in {folder}: put the {dataset.title} files there or "
                    f"point {DATA_DIR_ENV} at a directory with a {dataset.folder}/ folder "
                    "that holds them"
                )
            path = download(dataset, name, folder, mirrors, progress)
        arrays.append(parse_idx(read_verified(dataset, path, name), name))
    images, labels = arrays
    if images.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{split} images and labels disagree: {images.shape} vs {labels.shape}")
    return Split(images=images, labels=labels)
