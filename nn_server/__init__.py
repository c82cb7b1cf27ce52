"""nn-server: a small REST model server for neural networks (LeNet on MNIST first)."""

__version__ = "0.1.0"
