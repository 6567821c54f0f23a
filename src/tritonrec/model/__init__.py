"""The PyTorch ranking model."""
