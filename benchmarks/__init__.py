"""Benchmarks and the data generator; run from the repository root."""
