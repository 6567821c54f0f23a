"""Tuning studies: the serving configuration with the most candidates/s within a p99 target, and peers.

- :mod:`~tritonrec.bench.tuning.tune`: ``bench tune``, our coordinate search confirmed side by side;
- :mod:`~tritonrec.bench.tuning.model_analyzer`: NVIDIA Triton Model Analyzer's search on the same requests;
  :mod:`~tritonrec.bench.tuning.model_analyzer_results` reads what it wrote,
  :mod:`~tritonrec.bench.tuning.model_analyzer_view` renders the record.
"""
