"""What every process of a server agrees on: the kept versions of each network, the served
pointer (and its rollback), the training status and the training lease.

    base.py       the ``Store`` interface and the rules written once (promotion, rollback,
                  pruning, recovery, how a dead trainer reads)
    local.py      the local-directory backend (one machine)
    cluster.py    the cluster backend: Redis for coordination, objects.py for the weights
    objects.py    a cluster's weights store: a shared directory or S3
    status.py     the training status value and its transitions
    lifecycle.py  the status's one writer (``TrainingLog``, ``record_failure``)

``open_store`` is the one place that picks a backend.
"""

from __future__ import annotations

from pathlib import Path

from nn_server.core.config import KEEP_VERSIONS
from nn_server.core.locations import StoreLocation
from nn_server.store.base import Store

__all__ = ["Store", "open_store"]


def open_store(location: StoreLocation | Path, network: str, keep: int = KEEP_VERSIONS
               ) -> Store:
    """``network``'s store where ``location`` says (a bare path: a state directory)."""
    if isinstance(location, StoreLocation) and location.clustered:
        from nn_server.store.cluster import ClusterStore

        return ClusterStore(location, network, keep)
    from nn_server.store.local import LocalStore

    state_dir = location.state_dir if isinstance(location, StoreLocation) else location
    return LocalStore(state_dir, network, keep)
