"""The training loop: pure, device-agnostic, and silent — it reports through a callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import mxnet as mx
import numpy as np
from gluoncv.utils import LRScheduler, LRSequential
from mxnet import autograd, gluon
from mxnet.gluon import HybridBlock

from nn_server.networks.base import Recipe
from nn_server.store.status import Progress
from nn_server.training.data import Batches

EVAL_BATCH = 1000


@dataclass(frozen=True)
class FitResult:
    """The numbers a finished run produced."""

    test_accuracy: float
    train_accuracy: float
    train_loss: float
    epochs: int
    duration_s: float
    history: list[dict[str, float]] = field(default_factory=list)


ProgressCallback = Callable[[Progress], None]


def schedule(recipe: Recipe, total_steps: int) -> LRSequential:
    """The one-cycle learning rate, from gluoncv's schedulers: linear warm-up from 5 % of the
    peak to the peak, then cosine annealing to 0 (Smith's one-cycle policy)."""
    peak = recipe.max_learning_rate
    # gluoncv divides by (steps - 1), so each phase needs two steps at least.
    warmup = max(2, int(total_steps * recipe.warmup_fraction))
    return LRSequential([
        LRScheduler("linear", base_lr=0.05 * peak, target_lr=peak, niters=warmup),
        LRScheduler("cosine", base_lr=peak, target_lr=0.0, niters=max(2, total_steps - warmup)),
    ])


def evaluate(block: HybridBlock, batches: Batches, device: mx.Context) -> float:
    """Top-1 accuracy (0..1) of ``block`` over ``batches``."""
    correct = 0
    total = 0
    for x, y in batches:
        out = block(mx.nd.array(x, ctx=device))
        correct += int((out.argmax(axis=1).asnumpy() == y).sum())
        total += y.shape[0]
    return correct / max(1, total)


def fit(
    block: HybridBlock,
    train: Batches,
    test: Batches,
    recipe: Recipe,
    device: mx.Context,
    on_progress: ProgressCallback | None = None,
) -> FitResult:
    """Train an initialised ``block`` in place and return the test accuracy and history."""
    trainer = gluon.Trainer(
        block.collect_params(),
        "nag",
        {"learning_rate": recipe.max_learning_rate, "momentum": recipe.momentum,
         "wd": recipe.weight_decay},
    )
    smoothing = recipe.label_smoothing
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=not smoothing)
    total_steps = recipe.epochs * len(train)
    learning_rate = schedule(recipe, total_steps)
    step = 0
    started = time.monotonic()
    history: list[dict[str, float]] = []
    loss_avg = acc_avg = 0.0
    for epoch in range(1, recipe.epochs + 1):
        loss_sum = 0.0
        correct = seen = 0
        for batch_no, (x_np, y_np) in enumerate(train, start=1):
            trainer.set_learning_rate(learning_rate(step))
            x = mx.nd.array(x_np, ctx=device)
            y = mx.nd.array(y_np, ctx=device)
            with autograd.record():
                out = block(x)
                if smoothing:
                    classes = int(out.shape[1])
                    y = mx.nd.one_hot(y, classes, 1 - smoothing, smoothing / classes)
                loss = loss_fn(out, y)
            loss.backward()
            trainer.step(x_np.shape[0])
            step += 1
            # Reading the loss back synchronises with the engine; doing it every batch keeps
            # progress honest and costs little next to the forward/backward pass.
            loss_sum += float(loss.sum().asscalar())
            correct += int((out.argmax(axis=1).asnumpy() == y_np).sum())
            seen += x_np.shape[0]
            loss_avg, acc_avg = loss_sum / seen, correct / seen
            if on_progress is not None:
                on_progress(Progress.at(
                    epoch, recipe.epochs, batch_no, len(train), loss_avg, acc_avg,
                    time.monotonic() - started,
                ))
        history.append({"epoch": epoch, "loss": loss_avg, "train_accuracy": acc_avg})
    duration = time.monotonic() - started
    test_accuracy = evaluate(block, test, device)
    history[-1]["test_accuracy"] = test_accuracy
    return FitResult(
        test_accuracy=test_accuracy,
        train_accuracy=acc_avg,
        train_loss=loss_avg,
        epochs=recipe.epochs,
        duration_s=duration,
        history=history,
    )


def seed_everything(seed: int) -> None:
    """Make weight initialisation and dropout repeatable."""
    mx.random.seed(seed)
    np.random.seed(seed)
