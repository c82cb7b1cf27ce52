"""The trainer process's command line, written once: the supervisor builds it with
``TrainerCommand.argv`` and the trainer reads it back with ``TrainerCommand.parse``.

    python -m nn_server.training.trainer --network lenet --state-dir DIR --lease TOKEN
        [--state-url redis://... [--weights-url URL] [--replica NAME]]
        [--data-dir DIR] [--epochs N] [--train-subset N] [--test-subset N]
        [--promote better|always] [--keep N] [--runtime onnx|mxnet] [--precision int8|float]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nn_server.core.config import KEEP_VERSIONS, RUNTIMES
from nn_server.core.locations import StoreLocation
from nn_server.core.records import PRECISIONS

Promote = Literal["better", "always"]
PROMOTE: tuple[Promote, ...] = ("better", "always")
MODULE = "nn_server.training.trainer"


@dataclass(frozen=True)
class TrainerCommand:
    """One training, as the trainer process is told it."""

    network: str
    state_dir: Path
    lease: str
    """The token through which the trainer takes over the lease its starter holds."""
    data_dir: Path | None = None
    epochs: int | None = None
    """None: the recipe's."""
    train_subset: int | None = None
    test_subset: int | None = None
    promote: Promote = "better"
    """Serve the result only if at least as accurate (``better``), or anyway."""
    keep: int = KEEP_VERSIONS
    state_url: str | None = None
    """A cluster's coordination state (``NN_STATE_URL``), with its weights store and the
    name of this replica."""
    weights_url: str | None = None
    replica: str = ""
    runtime: str = "onnx"
    precision: str = "int8"
    """How the server's workers compute (``NN_RUNTIME``, ``NN_PRECISION``): promotion
    compares the new and the served weights as they would be served."""

    @property
    def location(self) -> StoreLocation:
        return StoreLocation(self.state_dir, self.state_url, self.weights_url, self.replica)

    def argv(self) -> list[str]:
        """The full command that starts the trainer process."""
        cmd = [sys.executable, "-m", MODULE, "--network", self.network,
               "--state-dir", str(self.state_dir), "--lease", self.lease,
               "--promote", self.promote, "--keep", str(self.keep),
               "--runtime", self.runtime, "--precision", self.precision]
        for flag, value in (("--data-dir", self.data_dir), ("--epochs", self.epochs),
                            ("--train-subset", self.train_subset),
                            ("--test-subset", self.test_subset),
                            ("--state-url", self.state_url),
                            ("--weights-url", self.weights_url),
                            ("--replica", self.replica or None)):
            if value is not None:
                cmd += [flag, str(value)]
        return cmd

    @classmethod
    def parse(cls, argv: list[str] | None, networks: list[str]) -> TrainerCommand:
        parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__)
        parser.add_argument("--network", required=True, choices=networks)
        parser.add_argument("--state-dir", type=Path, required=True)
        parser.add_argument("--lease", required=True,
                            help="how to take over the training lease (the local store: an "
                                 "inherited descriptor holding train.lock)")
        parser.add_argument("--data-dir", type=Path, default=None)
        parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
        parser.add_argument("--train-subset", type=int, default=None)
        parser.add_argument("--test-subset", type=int, default=None)
        parser.add_argument("--promote", choices=PROMOTE, default="better",
                            help="serve the result only if at least as accurate (better), "
                                 "or always")
        parser.add_argument("--keep", type=int, default=KEEP_VERSIONS,
                            help="versions to keep (the served one and its rollback stay)")
        parser.add_argument("--state-url", default=None, help="a cluster's Redis")
        parser.add_argument("--weights-url", default=None, help="a cluster's weights store")
        parser.add_argument("--replica", default="", help="this replica's name")
        parser.add_argument("--runtime", choices=RUNTIMES, default="onnx",
                            help="how the workers compute (NN_RUNTIME)")
        parser.add_argument("--precision", choices=PRECISIONS, default="int8",
                            help="the workers' NN_PRECISION")
        return cls(**vars(parser.parse_args(argv)))
