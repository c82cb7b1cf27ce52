"""The IDX data set loader: good files, missing ones, damaged ones, where a data set is
looked for, and downloading from mirrors. MNIST stands in for every data set (they share
the loader); every registered network's own data set is loaded and checked too.

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

from nn_server.networks import datasets, load_registry
from nn_server.networks.datasets import DataError, Dataset
from nn_server.networks.lenet import MNIST

REGISTRY = load_registry()

# tests/conftest.py has made sure the files are there and set NN_DATA_DIR.
ROOT_DIR = datasets.data_dir()
DATA_DIR = datasets.locate(MNIST, ROOT_DIR)
TEST_FILES = datasets.SPLITS["test"]
IMAGES, LABELS = TEST_FILES
# The first digits of each split, as every MNIST tutorial shows them.
FIRST_LABELS = {"train": [5, 0, 4, 1, 9, 2, 1, 3], "test": [7, 2, 1, 0, 4, 1, 4, 9]}
SIZES = {"train": 60_000, "test": 10_000}


@pytest.fixture(scope="module", autouse=True)
def shared_data() -> Path:
    # Fail, never skip: CI points NN_DATA_DIR at the shared copy, so missing data is a bug.
    missing = [n for n in datasets.FILES if datasets.find_file(DATA_DIR, n) is None]
    assert not missing, f"MNIST {missing} not found in {DATA_DIR}; set {datasets.DATA_DIR_ENV}"
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
    path = datasets.find_file(DATA_DIR, name)
    assert path is not None
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


# -- good files --------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["test", "train"])
def test_gzip_files_load(split: str) -> None:
    data = datasets.load_split(MNIST, split, DATA_DIR, allow_download=False)
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
    raw = datasets.load_split(MNIST, "test", tmp_path, allow_download=False)
    packed = datasets.load_split(MNIST, "test", DATA_DIR, allow_download=False)
    assert np.array_equal(raw.images, packed.images)
    assert np.array_equal(raw.labels, packed.labels)


def test_directory_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in TEST_FILES:
        gz_copy(name, tmp_path)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    assert datasets.data_dir() == tmp_path
    assert datasets.data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert len(datasets.load_split(MNIST, "test", allow_download=False)) == SIZES["test"]
    monkeypatch.delenv(datasets.DATA_DIR_ENV)
    assert datasets.data_dir() == datasets.DEFAULT_DATA_DIR


def test_unknown_split_is_refused() -> None:
    with pytest.raises(ValueError, match="train"):
        datasets.load_split(MNIST, "validation", DATA_DIR, allow_download=False)


# -- missing and damaged files -----------------------------------------------------------


@pytest.mark.parametrize("present", [(), (IMAGES,)], ids=["empty", "labels-missing"])
def test_missing_files_name_the_directory(tmp_path: Path, present: tuple[str, ...]) -> None:
    for name in present:
        gz_copy(name, tmp_path / "mnist")
    (tmp_path / "mnist").mkdir(exist_ok=True)
    with pytest.raises(DataError) as caught:
        datasets.load_split(MNIST, "test", tmp_path, allow_download=False)
    message = str(caught.value)
    assert str(tmp_path / "mnist") in message
    assert datasets.DATA_DIR_ENV in message
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
    gz_copy(IMAGES, tmp_path / "mnist")
    labels = gz_copy(LABELS, tmp_path / "mnist")
    labels.write_bytes(DAMAGE[damage](labels.read_bytes()))
    with pytest.raises(DataError) as caught:
        datasets.load_split(MNIST, "test", tmp_path, allow_download=False)
    assert str(labels) in str(caught.value)
    assert "delete it and retry" in str(caught.value)


def test_truncated_raw_file_is_a_data_error(tmp_path: Path) -> None:
    """A raw file cut short would make numpy's reshape fail; the digest catches it first."""
    gz_copy(LABELS, tmp_path / "mnist")
    images = tmp_path / "mnist" / IMAGES
    images.write_bytes(raw_content(IMAGES)[:-28 * 28 * 3])
    with pytest.raises(DataError, match=IMAGES):
        datasets.load_split(MNIST, "test", tmp_path, allow_download=False)


def test_wrong_digest_is_a_data_error(tmp_path: Path) -> None:
    """A well-formed IDX file with one label changed: valid gzip, valid IDX, wrong data."""
    gz_copy(IMAGES, tmp_path / "mnist")
    content = bytearray(raw_content(LABELS))
    content[8] = (content[8] + 1) % 10
    (tmp_path / "mnist" / f"{LABELS}.gz").write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match="does not match the MNIST file"):
        datasets.load_split(MNIST, "test", tmp_path, allow_download=False)


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
        data = datasets.load_split(
            MNIST, "test", target, mirrors=[mirror.url], progress=lambda *a: calls.append(a)
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
        assert (target / "mnist" / f"{name}.gz").read_bytes() == (good / f"{name}.gz").read_bytes()
    assert not list((target / "mnist").glob(".*")), "a temporary download file was left behind"


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
        data = datasets.load_split(MNIST, "test", target, mirrors=[first.url, second.url])
    assert data.labels[:8].tolist() == FIRST_LABELS["test"]
    assert f"/{LABELS}.gz" in first.requests
    assert second.requests == [f"/{LABELS}.gz"], "only the corrupt file is fetched again"
    content = gzip.decompress((target / "mnist" / f"{LABELS}.gz").read_bytes())
    assert hashlib.sha256(content).hexdigest() == MNIST.digests[LABELS]
    assert not list((target / "mnist").glob(".*")), "a rejected download was left behind"


def test_all_mirrors_failing_says_where_to_put_the_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    target = tmp_path / "data"
    refused = closed_port_url()
    with serve(empty) as not_found, pytest.raises(DataError) as caught:
        datasets.load_split(MNIST, "test", target, mirrors=[not_found.url, refused])
    message = str(caught.value)
    assert not_found.requests == [f"/{IMAGES}.gz"]
    assert not_found.url in message and refused in message, "each failed mirror is named"
    assert str(target / "mnist") in message and datasets.DATA_DIR_ENV in message
    assert "copy the four MNIST files" in message
    assert not list((target / "mnist").iterdir()), "nothing half-downloaded is left behind"


# -- where a data set is looked for ------------------------------------------------------


def test_each_data_set_has_its_own_folder(tmp_path: Path) -> None:
    """MNIST and Fashion-MNIST share file names: each lives in its own folder, and a flat
    folder of one data set's files is never taken for another's."""
    for name in TEST_FILES:
        gz_copy(name, tmp_path / "mnist")
    other = Dataset("Other", "other", dict.fromkeys(datasets.FILES, "0" * 64), mirrors=())
    assert datasets.locate(MNIST, tmp_path) == tmp_path / "mnist"
    assert not datasets.holds(other, tmp_path / "mnist")
    assert datasets.locate(other, tmp_path / "mnist") == tmp_path / "mnist" / "other"
    with pytest.raises(DataError, match="not found in"):
        datasets.load_split(other, "test", tmp_path / "mnist", allow_download=False)


def test_a_flat_folder_of_the_data_sets_files_still_works(tmp_path: Path) -> None:
    """The older layout: NN_DATA_DIR pointing straight at MNIST's four files."""
    for name in TEST_FILES:
        gz_copy(name, tmp_path)
    assert datasets.holds(MNIST, tmp_path)
    assert datasets.locate(MNIST, tmp_path) == tmp_path
    assert len(datasets.load_split(MNIST, "test", tmp_path, allow_download=False)) == 10_000


def test_a_system_package_folder_is_used_when_present(tmp_path: Path) -> None:
    """Like Debian's dataset-fashion-mnist in /usr/share/datasets/fashion-mnist."""
    system = tmp_path / "usr-share"
    for name in datasets.FILES:
        gz_copy(name, system)
    packaged = Dataset(MNIST.title, "packaged", MNIST.digests, mirrors=(),
                       system_dirs=(tmp_path / "absent", system))
    assert datasets.locate(packaged, tmp_path / "data") == system
    data = datasets.load_split(packaged, "test", tmp_path / "data", allow_download=False)
    assert data.labels[:8].tolist() == FIRST_LABELS["test"]
    assert not (tmp_path / "data").exists(), "nothing is copied or downloaded"


def test_a_data_set_must_name_all_four_files() -> None:
    with pytest.raises(ValueError, match="digests must name exactly"):
        Dataset("Broken", "broken", {"train-images-idx3-ubyte": "0" * 64}, mirrors=())


@pytest.mark.parametrize("network", sorted(REGISTRY))
def test_every_networks_data_set_loads_from_the_data_directory(network: str) -> None:
    dataset = REGISTRY[network].dataset
    for split, size in SIZES.items():
        data = datasets.load_split(dataset, split, ROOT_DIR, allow_download=False)
        assert len(data) == size
        assert data.images.shape[1:] == REGISTRY[network].input_shape[1:]
        assert int(data.labels.max()) == len(REGISTRY[network].labels) - 1
