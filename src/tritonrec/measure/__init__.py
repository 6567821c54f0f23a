"""Measuring tools: they produce figures and pass no verdict (the studies in :mod:`tritonrec.bench` judge).

- traffic and load: :mod:`~tritonrec.measure.traffic` (who asks, with which history, for how many candidates),
  :mod:`~tritonrec.measure.scenario` (scenario files), :mod:`~tritonrec.measure.loadgen` (closed and open loop),
  :mod:`~tritonrec.measure.background_traffic` (client threads under a fault), :mod:`~tritonrec.measure.soak`,
  :mod:`~tritonrec.measure.client_worker` (one client's run in its own process);
- NVIDIA's tools and locust: :mod:`~tritonrec.measure.perf_analyzer`, :mod:`~tritonrec.measure.locust_user`,
  :mod:`~tritonrec.measure.locustfile`, :mod:`~tritonrec.measure.locust_run` (one headless run, recorded);
- what the server and the machine did: :mod:`~tritonrec.measure.prometheus`, :mod:`~tritonrec.measure.cpu`,
  :mod:`~tritonrec.measure.gpu_monitor`, :mod:`~tritonrec.measure.latency`;
- composed: :mod:`~tritonrec.measure.points` (one setting by both load generators, repeated),
  :mod:`~tritonrec.measure.served_configs` (several configurations in one server), :mod:`~tritonrec.measure.plots`;
- kernels: :mod:`~tritonrec.measure.gather_kernels` (a quantized table's lookup, three ways; needs torch).
"""
