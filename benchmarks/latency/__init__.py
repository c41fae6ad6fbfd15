"""Network latency for the benchmarks: a TCP delay proxy and the stack outputs that route through it."""
