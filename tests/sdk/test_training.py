"""Training through the SDK: train, 409 while training, wait_for_training with progress,
the seed-compatible 503, and the body limit (413). Training is quick in tests (1 epoch on
2,000 digits, set by tests/conftest.py through NN_TRAIN_* variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nn_sdk import (
    Classification,
    NNClient,
    PayloadTooLarge,
    TimeoutException,
    TrainingInProgress,
    TrainingStatus,
)

TRAINING_LIMIT_S = 240.0


async def test_train_and_wait_with_a_progress_callback(tls_server: Any) -> None:
    async with NNClient(tls_server.url, verify=tls_server.cafile) as client:
        before = await client.status()
        started = await client.train("lenet")
        assert started.network == "lenet" and started.state == "training"
        assert "LeNet" in started.message

        with pytest.raises(TrainingInProgress) as caught:
            await client.train("lenet")
        assert caught.value.status == 409

        with pytest.raises(TimeoutException, match="still training"):
            await client.wait_for_training(poll_interval=0.05, timeout=0.2)

        seen: list[TrainingStatus] = []
        final = await client.wait_for_training(
            poll_interval=0.1, on_progress=seen.append, timeout=TRAINING_LIMIT_S
        )
    assert final.state == "idle" and not final.is_training
    assert seen[0].is_training and seen[-1] == final
    assert final.weights_version != before.weights_version
    assert final.accuracy is not None and final.datetime is not None
    fractions = [s.progress.fraction for s in seen if s.progress is not None]
    assert fractions, "no progress was reported while training"
    assert fractions == sorted(fractions)


async def test_seed_compatible_server_refuses_while_training(compat_server: Any) -> None:
    calls: list[TrainingStatus] = []

    async def record(status: TrainingStatus) -> None:  # coroutine callbacks are awaited
        calls.append(status)

    async with NNClient(compat_server.url) as client:
        await client.train()
        with pytest.raises(TrainingInProgress) as caught:
            await client.status()
        assert caught.value.status == 503 and "training" in str(caught.value)
        final = await client.wait_for_training(
            poll_interval=0.2, on_progress=record, timeout=TRAINING_LIMIT_S
        )
    assert calls[0].is_training and calls[-1] is final and final.state == "idle"


async def test_body_over_the_limit_is_payload_too_large(
    compat_server: Any, compat_body_limit: int
) -> None:
    too_big = b"\x89PNG\r\n\x1a\n" + bytes(compat_body_limit)
    with pytest.raises(PayloadTooLarge) as caught:
        await NNClient(compat_server.url).classify(too_big)
    assert caught.value.status == 413


async def test_classify_many_falls_back_to_single_requests_past_the_body_limit(
    compat_server: Any, compat_body_limit: int
) -> None:
    """Ten samples (~150 kB of base64) exceed the 100 kB limit as one batch; each fits."""
    images = sorted((Path(__file__).resolve().parents[2] / "images").glob("*.jpg"))[:10]
    assert sum(p.stat().st_size for p in images) * 4 / 3 > compat_body_limit
    async with NNClient(compat_server.url) as client:
        results = await client.classify_many(images, batch_size=10)
    assert len(results) == len(images)
    assert all(isinstance(r, Classification) for r in results), results
