"""Porch's benchmark suite: run it with `.venv/bin/python -m tests.bench.run` (see README.md)."""
