"""Benchmarks of every stage against the machine's limits; run each with ``python -m benchmarks.NAME``."""
