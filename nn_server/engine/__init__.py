"""Serving the networks inside one worker process: the newest served weights kept loaded,
and concurrent requests micro-batched into shared forward passes."""
