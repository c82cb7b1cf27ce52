"""The MNIST loader: good files, missing ones, damaged ones, and downloading from mirrors.

Downloads are tested against local HTTP servers on 127.0.0.1, never the internet; the
mirrors serve copies of the shared data set made in a temporary directory.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from nn_server import mnist

# tests/conftest.py has made sure the files are there and set NN_DATA_DIR.
DATA_DIR = mnist.data_dir()
TEST_FILES = mnist.SPLITS["test"]
IMAGES, LABELS = TEST_FILES
# The first digits of each split, as every MNIST tutorial shows them.
FIRST_LABELS = {"train": [5, 0, 4, 1, 9, 2, 1, 3], "test": [7, 2, 1, 0, 4, 1, 4, 9]}
SIZES = {"train": 60_000, "test": 10_000}


@pytest.fixture(scope="module", autouse=True)
def shared_data() -> Path:
    # Fail, never skip: CI points NN_DATA_DIR at the shared copy, so missing data is a bug.
    missing = [n for n in mnist.DIGESTS if mnist.find_file(DATA_DIR, n) is None]
    assert not missing, f"MNIST files {missing} not found in {DATA_DIR}; set {mnist.DATA_DIR_ENV}"
    return DATA_DIR


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours *_proxy variables; a proxy must not stand between us and 127.0.0.1."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def gz_copy(name: str, directory: Path) -> Path:
    """The shared ``name``.gz copied into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(DATA_DIR / f"{name}.gz", directory / f"{name}.gz"))


def raw_content(name: str) -> bytes:
    path = mnist.find_file(DATA_DIR, name)
    assert path is not None
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


# -- good files --------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["test", "train"])
def test_gzip_files_load(split: str) -> None:
    data = mnist.load_split(split, DATA_DIR, allow_download=False)
    assert data.images.shape == (SIZES[split], 28, 28)
    assert data.labels.shape == (SIZES[split],)
    assert data.images.dtype == data.labels.dtype == np.uint8
    assert len(data) == SIZES[split]
    assert data.labels[:8].tolist() == FIRST_LABELS[split]
    assert sorted(np.unique(data.labels).tolist()) == list(range(10))
    assert data.images.max() == 255 and data.images.min() == 0


def test_raw_files_load_the_same(tmp_path: Path) -> None:
    for name in TEST_FILES:
        (tmp_path / name).write_bytes(raw_content(name))
    raw = mnist.load_split("test", tmp_path, allow_download=False)
    packed = mnist.load_split("test", DATA_DIR, allow_download=False)
    assert np.array_equal(raw.images, packed.images)
    assert np.array_equal(raw.labels, packed.labels)


def test_directory_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in TEST_FILES:
        gz_copy(name, tmp_path)
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(tmp_path))
    assert mnist.data_dir() == tmp_path
    assert mnist.data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert len(mnist.load_split("test", allow_download=False)) == SIZES["test"]
    monkeypatch.delenv(mnist.DATA_DIR_ENV)
    assert mnist.data_dir() == mnist.DEFAULT_DATA_DIR


def test_unknown_split_is_refused() -> None:
    with pytest.raises(ValueError, match="train"):
        mnist.load_split("validation", DATA_DIR, allow_download=False)


# -- missing and damaged files -----------------------------------------------------------


@pytest.mark.parametrize("present", [(), (IMAGES,)], ids=["empty", "labels-missing"])
def test_missing_files_name_the_directory(tmp_path: Path, present: tuple[str, ...]) -> None:
    for name in present:
        gz_copy(name, tmp_path)
    with pytest.raises(mnist.DataError) as caught:
        mnist.load_split("test", tmp_path, allow_download=False)
    message = str(caught.value)
    assert str(tmp_path) in message
    assert mnist.DATA_DIR_ENV in message
    assert (IMAGES if not present else LABELS) in message


def flip(data: bytes, where: int) -> bytes:
    damaged = bytearray(data)
    damaged[where] ^= 0xFF
    return bytes(damaged)


# How a file can be damaged on disk; each yields the bytes to write for a given original.
DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "gzip-truncated": lambda gz: gz[: len(gz) // 2],
    "gzip-crc-trailer": lambda gz: flip(gz, len(gz) - 6),
    "gzip-header": lambda gz: gz[:2] + b"\x00" + gz[3:],
    "gzip-stream": lambda gz: flip(gz, 100),
    "empty": lambda gz: b"",
}


@pytest.mark.parametrize(
    "damage",
    list(DAMAGE),
)
def test_damaged_gzip_is_a_data_error(tmp_path: Path, damage: str) -> None:
    gz_copy(IMAGES, tmp_path)
    labels = gz_copy(LABELS, tmp_path)
    labels.write_bytes(DAMAGE[damage](labels.read_bytes()))
    with pytest.raises(mnist.DataError) as caught:
        mnist.load_split("test", tmp_path, allow_download=False)
    assert str(labels) in str(caught.value)
    assert "delete it and retry" in str(caught.value)


def test_truncated_raw_file_is_a_data_error(tmp_path: Path) -> None:
    """A raw file cut short would make numpy's reshape fail; the digest catches it first."""
    gz_copy(LABELS, tmp_path)
    images = tmp_path / IMAGES
    images.write_bytes(raw_content(IMAGES)[:-28 * 28 * 3])
    with pytest.raises(mnist.DataError, match=IMAGES):
        mnist.load_split("test", tmp_path, allow_download=False)


def test_wrong_digest_is_a_data_error(tmp_path: Path) -> None:
    """A well-formed IDX file with one label changed: valid gzip, valid IDX, wrong data."""
    gz_copy(IMAGES, tmp_path)
    content = bytearray(raw_content(LABELS))
    content[8] = (content[8] + 1) % 10
    (tmp_path / f"{LABELS}.gz").write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(mnist.DataError, match="does not match the canonical MNIST file"):
        mnist.load_split("test", tmp_path, allow_download=False)


# -- downloading -------------------------------------------------------------------------


class Mirror:
    """A static file server on 127.0.0.1 that records which paths were asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        handler = functools.partial(self.Handler, self, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, mirror: Mirror, *args: object, **kwargs: object) -> None:
            self.mirror = mirror
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            self.mirror.requests.append(self.path)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output clean


@contextlib.contextmanager
def serve(root: Path) -> Iterator[Mirror]:
    mirror = Mirror(root)
    thread = threading.Thread(target=mirror.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        mirror.httpd.shutdown()
        mirror.httpd.server_close()
        thread.join(5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_missing_files_are_downloaded_verified_and_loaded(tmp_path: Path) -> None:
    good = tmp_path / "mirror"
    for name in TEST_FILES:
        gz_copy(name, good)
    target = tmp_path / "data"
    calls: list[tuple[str, int, int | None]] = []
    with serve(good) as mirror:
        data = mnist.load_split(
            "test", target, mirrors=[mirror.url], progress=lambda *a: calls.append(a)
        )
    assert len(data) == SIZES["test"]
    assert data.labels[:8].tolist() == FIRST_LABELS["test"]
    assert sorted(mirror.requests) == sorted(f"/{name}.gz" for name in TEST_FILES)
    for name in TEST_FILES:
        size = (good / f"{name}.gz").stat().st_size
        seen = [(done, total) for n, done, total in calls if n == name]
        assert seen, f"no progress reported for {name}"
        assert all(total == size for _, total in seen)
        dones = [done for done, _ in seen]
        assert dones == sorted(dones) and dones[-1] == size
        assert (target / f"{name}.gz").read_bytes() == (good / f"{name}.gz").read_bytes()
    assert not list(target.glob(".*")), "a temporary download file was left behind"


def html_error_page(_gz: bytes) -> bytes:
    return b"<html><body>Service temporarily unavailable</body></html>"


BAD_MIRROR: dict[str, Callable[[bytes], bytes]] = {
    "html-page": html_error_page,
    "truncated": DAMAGE["gzip-truncated"],
    "crc-trailer": DAMAGE["gzip-crc-trailer"],
    "stream": DAMAGE["gzip-stream"],
    "other-data": lambda gz: gzip.compress(gzip.decompress(gz)[::-1]),
}


@pytest.mark.parametrize(
    "damage",
    list(BAD_MIRROR),
)
def test_a_corrupt_mirror_is_rejected_and_the_next_used(tmp_path: Path, damage: str) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    for name in TEST_FILES:
        gz_copy(name, good)
        gz_copy(name, bad)
    labels = bad / f"{LABELS}.gz"
    labels.write_bytes(BAD_MIRROR[damage](labels.read_bytes()))
    target = tmp_path / "data"
    with serve(bad) as first, serve(good) as second:
        data = mnist.load_split("test", target, mirrors=[first.url, second.url])
    assert data.labels[:8].tolist() == FIRST_LABELS["test"]
    assert f"/{LABELS}.gz" in first.requests
    assert second.requests == [f"/{LABELS}.gz"], "only the corrupt file is fetched again"
    content = gzip.decompress((target / f"{LABELS}.gz").read_bytes())
    assert hashlib.sha256(content).hexdigest() == mnist.DIGESTS[LABELS]
    assert not list(target.glob(".*")), "a rejected download was left behind"


def test_all_mirrors_failing_says_where_to_put_the_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    target = tmp_path / "data"
    refused = closed_port_url()
    with serve(empty) as not_found, pytest.raises(mnist.DataError) as caught:
        mnist.load_split("test", target, mirrors=[not_found.url, refused])
    message = str(caught.value)
    assert not_found.requests == [f"/{IMAGES}.gz"]
    assert not_found.url in message and refused in message, "each failed mirror is named"
    assert str(target) in message and mnist.DATA_DIR_ENV in message
    assert "copy the four MNIST files" in message
    assert not list(target.iterdir()), "nothing half-downloaded is left in the data directory"
