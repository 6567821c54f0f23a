"""Serving studies: sweeps, perf_analyzer, efficiency, batching, request contracts and client cost.

- :mod:`~tritonrec.bench.serving.sweep`: closed- and open-loop sweeps, perf_analyzer beside each point;
- :mod:`~tritonrec.bench.serving.efficiency`: the share of the model's own speed that survives serving;
- :mod:`~tritonrec.bench.serving.batching`: dynamic batching off, on and a few batcher settings;
- :mod:`~tritonrec.bench.serving.request_contracts`: the history once per request vs once per candidate row;
- :mod:`~tritonrec.bench.serving.client_bench`: the sync and asyncio clients beside perf_analyzer.
"""
