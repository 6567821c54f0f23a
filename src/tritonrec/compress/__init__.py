"""Compression: a checkpoint in, a smaller checkpoint with its lineage out (``tritonrec compress ...``).

- :mod:`~tritonrec.compress.options`: the methods (:class:`~tritonrec.compress.options.CompressionMethod`) and
  their options (no torch);
- :mod:`~tritonrec.compress.prune`: structured pruning of the dense part (channels removed physically);
- :mod:`~tritonrec.compress.distill`: knowledge distillation into a smaller student;
- :mod:`~tritonrec.compress.share`: the hashing trick and the quotient-remainder trick for the item table;
- :mod:`~tritonrec.compress.quantize`: row-wise INT8/INT4 embedding tables;
- :mod:`~tritonrec.compress.size`: parameters and bytes by part;
- :mod:`~tritonrec.compress.run`: one run, parent -> evaluated checkpoint with lineage.

The result is a normal checkpoint: ``tritonrec evaluate``, ``export onnx``, ``repo build`` and serving take it
unchanged. Import the module you need (all but ``options`` need torch).
"""
