"""The capacity study: the Kubernetes HPA control law simulated on pod capacity the serving studies measured.

- :mod:`~tritonrec.bench.capacity.autoscaling`: the simulation; :mod:`~tritonrec.bench.capacity.autoscaling_report`
  its record (run by ``bench/hpa_simulation.py``).
"""
