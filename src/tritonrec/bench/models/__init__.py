"""Model studies: ranking quality of the presets, and every compression method measured side by side.

- :mod:`~tritonrec.bench.models.quality`: ``bench quality``, presets trained and scored against the baselines;
- :mod:`~tritonrec.bench.models.compression`: ``bench compression``, size, quality, in-process and served speed;
  :mod:`~tritonrec.bench.models.compression_report` judges its goals and renders the record.

Both train models (torch).
"""
