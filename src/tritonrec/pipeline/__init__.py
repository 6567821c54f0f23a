"""The typed steps from data to a served, scored model (train -> export -> repository -> serve -> score).

- :mod:`~tritonrec.pipeline.steps`: the steps themselves, each returning a frozen result the next one takes;
- :mod:`~tritonrec.pipeline.evaluation`: one artifact (checkpoint or ONNX file) scored on a split;
- :mod:`~tritonrec.pipeline.synth`: a synthetic dataset written with its ground-truth metrics.

The compositions live above: :mod:`tritonrec.demo` (the main job), :mod:`tritonrec.repo_build`, ``select``,
``quantize`` and the studies. ``steps`` needs the training stack (torch); a client- or bench-only install never
imports it.
"""
