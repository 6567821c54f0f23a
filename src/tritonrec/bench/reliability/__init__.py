"""The reliability study: bad input, overload, faults, rollout and soak against the real local server.

- :mod:`~tritonrec.bench.reliability.fuzz`: malformed requests sent raw, each answer judged;
- :mod:`~tritonrec.bench.reliability.faults`: overload, ``kill -9``, dead stubs, a corrupt model, a rollout;
- :mod:`~tritonrec.bench.reliability.run`: ``tritonrec bench reliability``, all of them in one record.
"""
