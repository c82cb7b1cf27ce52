"""Training: data batches (``data``), the pure loop (``loop``), a full run (``run``) and the
command-line entry point (``__main__``)."""

from nn_server.training.loop import FitResult, Hyperparameters, Progress
from nn_server.training.run import TrainingJob, evaluate_weights, train_network

__all__ = [
    "FitResult",
    "Hyperparameters",
    "Progress",
    "TrainingJob",
    "evaluate_weights",
    "train_network",
]
