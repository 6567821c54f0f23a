"""The GPU study (``tritonrec bench gpu``, ``bench/gpu/run.sh``): the ranker per precision on one device.

- :mod:`~tritonrec.bench.gpu.inprocess_stage`: candidates/s and quality deltas in process, per precision;
- :mod:`~tritonrec.bench.gpu.served_stage`: ``ranker_gpu`` on the bundled tritonserver under perf_analyzer;
- :mod:`~tritonrec.bench.gpu.run`: both stages in one record; :mod:`~tritonrec.bench.gpu.report` its Markdown;
- :mod:`~tritonrec.bench.gpu.carry`: what a GPU machine without a registry needs from here, packed small.
"""
