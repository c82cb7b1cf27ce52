"""Choosing the MXNet device: the first GPU when one is usable, else the CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mxnet as mx


def pick_device() -> mx.Context:
    """Return ``mx.gpu(0)`` when MXNet sees a GPU (CUDA build and a driver), else ``mx.cpu()``."""
    import mxnet as mx

    try:
        if mx.context.num_gpus() > 0:
            return mx.gpu(0)
    except mx.base.MXNetError:
        # A CPU build raises here instead of returning 0.
        pass
    return mx.cpu()
