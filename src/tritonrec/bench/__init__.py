"""Benchmarks: ranking-quality reports (and, in later issues, serving sweeps and load tests)."""
