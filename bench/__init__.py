"""Benchmarks: `make bench` (bench.run) and `make soak` (bench.soak). Not part of the beds package."""
