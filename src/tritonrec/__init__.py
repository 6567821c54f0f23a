"""tritonrec: an e-commerce ranking model from PyTorch to a measured NVIDIA Triton deployment."""

from tritonrec.errors import CheckpointError, ConfigError, DataError, TritonRecError

__all__ = ["CheckpointError", "ConfigError", "DataError", "TritonRecError", "__version__"]

__version__ = "0.1.0"
