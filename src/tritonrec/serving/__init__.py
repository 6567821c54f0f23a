"""Running Triton here: the bundled tritonserver, its health watchdog, and a local endpoint for an export.

- :mod:`~tritonrec.serving.server`: :class:`~tritonrec.serving.server.LocalTriton`, the tritonserver binary of the
  nvidia-pytriton wheel, started, waited for and stopped;
- :mod:`~tritonrec.serving.health`: the real-inference probe and the watchdog that reloads a dead model;
- :mod:`~tritonrec.serving.endpoint`: an export placed in a temporary repository and served (benchmarks, select).
"""
