"""Training and checkpoints."""
