"""The Triton Python-backend ``model.py`` files, copied verbatim into a model repository.

- ``ranker_cpu_model.py``: ``ranker_cpu``, ONNX Runtime or OpenVINO over the whole dynamic batch (CPU);
- ``ranker_gpu_model.py``: ``ranker_gpu``, a ``torch.export`` program on CUDA over the whole dynamic batch.

They import nothing of tritonrec (a serving node need not install it), so they sit under every other layer; the
library imports them as modules too (packing, sessions, the program runner), which keeps one copy of that code.
"""

from pathlib import Path

__all__ = ["MODEL_FILES_DIR"]

MODEL_FILES_DIR = Path(__file__).resolve().parent
"""Where the ``model.py`` files are (found by path: importing ``ranker_gpu_model`` would import torch)."""
