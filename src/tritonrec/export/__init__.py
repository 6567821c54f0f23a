"""Export: ONNX (FP32/FP16) artifacts with parity records against their source."""
