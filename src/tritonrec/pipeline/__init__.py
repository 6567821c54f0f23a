"""The end-to-end steps (train -> export -> repository -> serve -> score) as functions returning typed results.

- :mod:`~tritonrec.pipeline.steps`: the steps themselves;
- :mod:`~tritonrec.demo`: the main job, composed from them;
- :mod:`~tritonrec.pipeline.evaluation`: one artifact (checkpoint or ONNX file) scored on a split;
- :mod:`~tritonrec.pipeline.synth`: a synthetic dataset written with its ground-truth metrics.

``steps`` and ``demo`` need the training stack (torch); a client- or bench-only install never imports them.
"""
