"""Studies: each composes the measuring tools of :mod:`tritonrec.measure` into one record with its verdicts.

One subpackage per study, independent of one another (an import-linter contract keeps them apart):

- :mod:`~tritonrec.bench.serving`: sweeps, perf_analyzer beside our harness, locust runs, serving efficiency,
  dynamic batching, the request contracts, the clients' own cost;
- :mod:`~tritonrec.bench.tuning`: ``bench tune`` (the serving configuration) and NVIDIA Model Analyzer beside it;
- :mod:`~tritonrec.bench.reliability`: bad input, overload, faults, rollout and soak on the real server;
- :mod:`~tritonrec.bench.gpu`: the ranker per precision on a GPU, in process and served (``bench/gpu/run.sh``);
- :mod:`~tritonrec.bench.models`: ranking quality of the presets, and every compression method side by side;
- :mod:`~tritonrec.bench.capacity`: the Kubernetes HPA simulated on measured pod capacity.

Every study records where and with what it measured through :mod:`tritonrec.records` (host, ISA flags,
versions) and writes JSON + Markdown (+ PNG) with :func:`tritonrec.records.write_report`. Only the model studies
and ``bench gpu`` need torch; the serving, tuning and reliability studies run from a ``tritonrec[bench]`` install.
"""
