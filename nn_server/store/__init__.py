"""What every process of a server agrees on: the kept versions of each network, the served
pointer (and its rollback), the training status and the training lease.

    base.py       the ``Store`` interface and the rules written once (promotion, rollback,
                  pruning, recovery, how a dead trainer reads)
    local.py      the local-directory backend
    status.py     the training status value and its transitions
    lifecycle.py  the status's one writer (``TrainingLog``, ``record_failure``)

``open_store`` is the one place that picks a backend.
"""

from __future__ import annotations

from pathlib import Path

from nn_server.core.config import KEEP_VERSIONS
from nn_server.store.base import Store

__all__ = ["Store", "open_store"]


def open_store(state_dir: Path, network: str, keep: int = KEEP_VERSIONS) -> Store:
    """``network``'s store in ``state_dir``."""
    from nn_server.store.local import LocalStore

    return LocalStore(state_dir, network, keep)
