"""Benchmarks for nn-server's classify endpoint: ``python -m bench`` (see BENCHMARKS.md)."""
