"""Acting: perform a ``Command`` with ``nn_sdk`` and return result objects; never prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nn_cli.parse import LIST_NETWORKS, Command, UsageError
from nn_sdk import (
    Classification,
    NetworkInfo,
    NetworkSummary,
    NNClient,
    TrainingStarted,
    TrainingStatus,
    Versions,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class ClassifiedImage:
    """A classified file: where it came from, its bytes (for the preview), the answer."""

    path: Path
    data: bytes
    result: Classification
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Served:
    """``serve``: the network now serves this version."""

    network: str
    version: str


@dataclass(frozen=True)
class Exported:
    """``export``: a version saved as an ONNX model."""

    network: str
    version: str
    path: Path
    size: int


Outcome = (
    tuple[NetworkSummary, ...] | NetworkInfo | TrainingStarted | TrainingStatus
    | ClassifiedImage | Versions | Served | Exported
)


def read_image(path: Path) -> bytes:
    """The file's bytes; ``UsageError`` if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


async def classify(client: NNClient, network: str, path: Path) -> ClassifiedImage:
    data = read_image(path)
    result = await client.classify(data, network)
    return ClassifiedImage(path, data, result)


async def act(client: NNClient, command: Command) -> Outcome:
    """Perform a non-interactive command (``network`` set; classify needs ``file``)."""
    network, operation = command.network, command.operation
    if network == LIST_NETWORKS:
        return await client.list_networks()
    assert network is not None and operation is not None
    if operation == "classify":
        assert command.file is not None
        return await classify(client, network, command.file)
    if operation == "status":
        return await client.status(network)
    if operation == "about":
        return await client.about(network)
    if operation == "versions":
        return await client.versions(network)
    if operation == "serve":
        assert command.version is not None
        return Served(network, await client.serve(command.version, network))
    if operation == "export":
        assert command.version is not None and command.file is not None
        path = await client.export_onnx(command.version, command.file, network)
        return Exported(network, command.version, path, path.stat().st_size)
    return await client.train(network)


async def train_and_follow(
    client: NNClient,
    network: str,
    on_progress: Callable[[TrainingStatus], object],
    poll_interval: float,
) -> TrainingStatus:
    """Start training and poll until it ends; ``on_progress`` sees every status."""
    await client.train(network)
    return await client.wait_for_training(
        network, poll_interval=poll_interval, on_progress=on_progress
    )


def samples_dir(images_dir: Path, network: str) -> Path:
    """Where a network's sample images are: ``images/<network>/`` (e.g. ``images/fashion``),
    else ``images/`` itself, which holds LeNet's digits."""
    own = images_dir / network
    return own if own.is_dir() else images_dir


def list_images(directory: Path) -> list[Path]:
    """The images the picker offers, sorted by name."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
