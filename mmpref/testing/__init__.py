"""Tiny, randomly initialised models built from configs, for tests, demos and benchmarks (no downloads)."""
