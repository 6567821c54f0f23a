"""Precision: calibrated INT8 Q/DQ ONNX, sensitivity per layer group, mixed precision, CPU INT8 forms, OpenVINO.

- :mod:`~tritonrec.quantize.calibration`: calibration rows from real training users (any model's: feeds);
- :mod:`~tritonrec.quantize.groups`: ONNX nodes -> layer groups (embeddings, attention, cross, MLP, head);
- :mod:`~tritonrec.quantize.ort_quant`: ONNX Runtime's quantizer (Q/DQ S8S8, QOperator U8S8, dynamic);
- :mod:`~tritonrec.quantize.modelopt_ptq`: NVIDIA ModelOpt's ONNX PTQ in its own virtualenv;
- :mod:`~tritonrec.quantize.openvino_ptq`: NNCF post-training quantization for OpenVINO;
- :mod:`~tritonrec.quantize.tables`: row-wise INT8 embedding tables in any ONNX graph, dequantized after the gather;
- :mod:`~tritonrec.quantize.sensitivity`: per-group deltas and the mixed-precision choice under a budget;
- :mod:`~tritonrec.quantize.speed`: in-process candidates/s side by side, and which kernels ran in INT8;
- :mod:`~tritonrec.quantize.run`: ``tritonrec quantize`` composed of the above; :mod:`~tritonrec.quantize.report`
  its JSON + Markdown; :mod:`~tritonrec.quantize.served_parity`: the winner served through Triton;
- :mod:`~tritonrec.quantize.spec_quantize`: ``tritonrec quantize --spec``, the same study for a team's own model on
  its own rows.

Import the module you need: ONNX Runtime, OpenVINO and NNCF are imported only where they are used.
"""
