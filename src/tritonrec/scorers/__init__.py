"""Every artifact as a :data:`tritonrec.metrics.Scorer`, so one metrics module scores them all the same way.

- :mod:`~tritonrec.scorers.eager`: a PyTorch model in eval mode (needs torch);
- :mod:`~tritonrec.scorers.ort`: an ONNX file in an ONNX Runtime CPU session;
- :mod:`~tritonrec.scorers.triton`: a served model, one gRPC request per user, through ``RankingClient``;
- :mod:`~tritonrec.scorers.popularity`: the popularity baseline every model must beat.

Import the module you need: each pulls in only its own runtime.
"""
