"""Benchmarks: ranking quality, serving sweeps, perf_analyzer, locust, efficiency, batching, clients.

Every runner records where and with what it measured through :mod:`tritonrec.bench.report` (host, ISA flags,
versions) and writes JSON + Markdown (+ PNG) with :func:`tritonrec.bench.report.write_report`. Only
:mod:`tritonrec.bench.quality` (it trains models) needs torch; the rest runs from a ``tritonrec[bench]`` install.
"""
