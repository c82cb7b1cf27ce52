"""HTTPS: trust the server's self-signed certificate by file, or opt out explicitly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nn_sdk import ConnectError, NNClient, NNError
from nn_server.networks import load_registry

REGISTRY = load_registry()

IMAGES = Path(__file__).resolve().parents[2] / "images"


async def test_trusting_the_certificate_file(tls_server: Any) -> None:
    assert tls_server.url.startswith("https://") and tls_server.cafile is not None
    async with NNClient(tls_server.url, verify=tls_server.cafile) as client:
        assert [n.name for n in await client.list_networks()] == list(REGISTRY)
        assert (await client.about()).title == "LeNet"


async def test_one_shot_classify_over_https(tls_server: Any) -> None:
    image = next(iter(sorted(IMAGES.glob("[0-9]_*.png"))), None)
    assert image is not None, "images/ must hold PNG samples"
    result = await NNClient(tls_server.url, verify=str(tls_server.cafile)).classify(image)
    assert result.number.isdigit()


async def test_verification_off_is_explicit(tls_server: Any) -> None:
    async with NNClient(tls_server.url, verify=False) as client:
        assert (await client.status()).state in ("idle", "training", "failed")


async def test_untrusted_certificate_is_a_connect_error(tls_server: Any) -> None:
    with pytest.raises(ConnectError, match="certificate is not trusted"):
        await NNClient(tls_server.url).list_networks()  # system CAs only


async def test_plain_http_to_an_https_server_fails_cleanly(tls_server: Any) -> None:
    with pytest.raises(NNError, match="https"):
        await NNClient(tls_server.url.replace("https://", "http://"), timeout=5).status()
