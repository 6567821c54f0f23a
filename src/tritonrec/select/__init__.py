"""``tritonrec select``: every runtime x precision x compression measured the same way, and a pick for an SLA.

Import the module you need: each pulls in only its own runtime.
"""
