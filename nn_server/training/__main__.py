"""``python -m nn_server.training``: train a network on its data set, or evaluate weights.

    python -m nn_server.training train [--network lenet] [--out DIR] [--data-dir DIR] ...
    python -m nn_server.training evaluate [--network lenet] [--weights FILE] [--data-dir DIR]

Without options a run follows the network's own recipe, which is how its shipped weights
were made (their record, ``nn_server/networks/weights/<network>.json``, has the command).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from pathlib import Path

# Before MXNet loads: left unset, MXNet keeps a core for its engine and gives the math one
# thread fewer than the machine has — half of a 2-core machine. Use them all, as the
# server's trainer does (NN_TRAIN_THREADS).
os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))

from mxnet.base import MXNetError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from nn_server.networks import Recipe, UnknownNetwork, load_registry, network_class
from nn_server.networks.datasets import DataError
from nn_server.store.status import Progress as TrainProgress
from nn_server.training.run import TrainingJob, evaluate_weights, train_network


def positive(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m nn_server.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--network", default="lenet", choices=sorted(load_registry()))
    common.add_argument("--data-dir", type=Path, default=None,
                        help="data directory, holding mnist/, fashion-mnist/, ... (default: "
                             "$NN_DATA_DIR or ~/.cache/nn-server)")
    common.add_argument("--no-download", action="store_true",
                        help="fail instead of downloading missing data set files")

    train = sub.add_parser("train", parents=[common], help="train and save weights + record")
    train.add_argument("--out", type=Path, default=Path("."),
                       help="directory for <network>.params and <network>.json (default: .)")
    # Unset options keep the network's recipe.
    train.add_argument("--epochs", type=positive, default=None)
    train.add_argument("--batch-size", type=positive, default=None)
    train.add_argument("--lr", type=float, default=None,
                       help="peak learning rate of the one-cycle schedule")
    train.add_argument("--shift", type=int, default=None,
                       help="random shift augmentation, in pixels")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--train-subset", type=positive, default=None, metavar="N")
    train.add_argument("--test-subset", type=positive, default=None, metavar="N")

    ev = sub.add_parser("evaluate", parents=[common], help="test-set accuracy of weights")
    ev.add_argument("--weights", type=Path, default=None,
                    help="weights file (default: the weights shipped in the package)")
    return parser.parse_args(argv)


def recipe_of(args: argparse.Namespace) -> Recipe:
    """The network's recipe with the options given on the command line."""
    recipe = network_class(args.network).recipe
    changes: dict[str, object] = {
        field: value for field, value in (
            ("epochs", args.epochs), ("batch_size", args.batch_size),
            ("max_learning_rate", args.lr), ("seed", args.seed),
        ) if value is not None
    }
    if args.shift is not None:
        changes["augmentation"] = dataclasses.replace(recipe.augmentation, shift=args.shift)
    return dataclasses.replace(recipe, **changes)  # type: ignore[arg-type]


def run_train(args: argparse.Namespace, argv: list[str], console: Console) -> int:
    job = TrainingJob(
        network=args.network, out_dir=args.out, data_dir=args.data_dir,
        recipe=recipe_of(args),
        train_subset=args.train_subset, test_subset=args.test_subset,
        allow_download=not args.no_download,
        command=shlex.join(["python", "-m", "nn_server.training", *argv]),
    )
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bars:
        downloads: dict[str, TaskID] = {}
        task = bars.add_task("epoch 1", total=None, info="")

        def on_download(name: str, done: int, total: int | None) -> None:
            if name not in downloads:
                downloads[name] = bars.add_task(f"download {name}", total=total, info="")
            bars.update(downloads[name], completed=done)

        def on_progress(p: TrainProgress) -> None:
            bars.update(
                task, description=f"epoch {p.epoch}/{p.epochs}", total=p.epochs * p.batches,
                completed=(p.epoch - 1) * p.batches + p.batch,
                info=f"loss {p.loss:.4f} acc {p.accuracy:.2%}",
            )

        record = train_network(job, on_progress, on_download, console.log)
    console.print(
        f"[bold green]test accuracy {record.accuracy} %[/] after {record.epochs} epochs "
        f"in {record.duration_s} s of training → {args.out / (args.network + '.params')}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    console = Console(stderr=False)
    try:
        if args.command == "train":
            return run_train(args, sys.argv[1:] if argv is None else argv, console)
        if args.weights is not None and not args.weights.is_file():
            raise FileNotFoundError(f"weights file {args.weights} not found")
        accuracy = evaluate_weights(args.network, args.weights, args.data_dir,
                                    allow_download=not args.no_download)
        console.print(f"test accuracy {accuracy * 100:.2f} %")
        return 0
    except (DataError, UnknownNetwork, OSError) as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        return 1
    except MXNetError as exc:  # its message carries a C++ traceback; the last line says why
        reason = [line for line in str(exc).splitlines() if line.strip()][-1]
        Console(stderr=True).print(f"[red]error:[/] MXNet: {reason}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
