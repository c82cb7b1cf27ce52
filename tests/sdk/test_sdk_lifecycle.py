"""The model lifecycle through the SDK: a training that is not promoted, versions, serving
one (rollback), exporting ONNX, top-k — and local files as SDK errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest

from nn_sdk import LocalFileError, NNClient, NNError, NotFound, Versions

ROOT = Path(__file__).resolve().parents[2]
SEVEN = ROOT / "images" / "7_pen.jpg"


async def test_training_versions_and_rollback(lifecycle_server: Any) -> None:
    async with NNClient(lifecycle_server.url) as client:
        before = await client.versions()
        assert isinstance(before, Versions) and before.served is not None
        shipped = before.served
        await client.train(epochs=1)
        final = await client.wait_for_training(poll_interval=0.2, timeout=240)
        assert final.state == "idle" and final.promoted is False
        assert final.reason and "of the served weights" in final.reason
        assert final.weights_version == shipped and final.version != shipped
        assert [e.epoch for e in final.history] == [1]

        after = await client.versions()
        assert after.served == shipped
        newest = after.versions[0]
        assert (newest.version, newest.served, newest.promoted) == (final.version, False, False)
        assert newest.accuracy is not None and newest.epochs == 1
        # Measured in both precisions when made, served in int8 only where it scored so.
        assert newest.accuracies.keys() == {"float", "int8"}
        good = newest.accuracies["int8"] >= newest.accuracies["float"] - 0.1 - 1e-9
        assert newest.precision == ("int8" if good else "float")
        [shipped_entry] = [v for v in after.versions if v.version == shipped]
        assert shipped_entry.precision == "int8"

        assert await client.serve(newest.version) == newest.version
        assert (await client.versions()).previous == shipped
        assert await client.serve(shipped) == shipped
        with pytest.raises(NotFound):
            await client.serve("0123456789ab")


async def test_export_onnx_and_top_k(lifecycle_server: Any, tmp_path: Path) -> None:
    async with NNClient(lifecycle_server.url) as client:
        served = (await client.versions()).served
        assert served is not None
        path = await client.export_onnx(served, tmp_path / "lenet.onnx")
        model = onnx.load(str(path))
        assert model.graph.input[0].name == "image"
        ops = {node.op_type for node in model.graph.node}
        assert "QuantizeLinear" in ops  # what the server computes with: int8
        exported = await client.export_onnx(served, tmp_path / "float.onnx", precision="float")
        assert "QuantizeLinear" not in {n.op_type for n in onnx.load(str(exported)).graph.node}
        with pytest.raises(NotFound):
            await client.export_onnx("0123456789ab", tmp_path / "x.onnx")
        with pytest.raises(LocalFileError, match="cannot write"):
            await client.export_onnx(served, tmp_path / "missing-dir" / "x.onnx")

        result = await client.classify(SEVEN, top_k=3)
        assert result.label == "7" and len(result.top) == 3
        assert result.top[0].label == "7" and result.top[0].probability == result.confidence
        assert (await client.classify(SEVEN)).top == ()


async def test_a_missing_image_file_is_an_sdk_error(lifecycle_server: Any) -> None:
    client = NNClient(lifecycle_server.url)
    with pytest.raises(LocalFileError, match=r"missing\.png") as caught:
        await client.classify("missing.png")
    assert isinstance(caught.value, NNError) and isinstance(caught.value, OSError)
