"""Opt-in shim for Model Navigator 0.14 on a CPU-only torch: ``torch.cuda.synchronize`` becomes a no-op.

Navigator's Torch, TorchScript, torch.compile and ExportedProgram runners time each inference step with a callback
that calls ``torch.cuda.synchronize()`` unconditionally (``model_navigator/runners/torch.py``, the
``InferenceStepTimer`` of ``_BaseTorchRunner``). On a CPU-only torch that raises ``AssertionError: Torch not
compiled with CUDA enabled``, so every Torch-family profiling run fails and Navigator can only pick ONNX.

This folder goes on ``PYTHONPATH`` only when ``run_navigator(..., cpu_sync_shim=True)`` asks for it; Python then
imports this module at start-up in the worker and in every subprocess Navigator starts. It changes nothing
until ``torch.cuda`` is imported, and then only where CUDA is unavailable (CPU work is synchronous, so there
is nothing to wait for). The run's record says whether the shim was on.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any


def _no_sync(device: Any = None) -> None:
    """``torch.cuda.synchronize`` where there is no CUDA device: nothing to wait for."""


class _TorchCudaHook(importlib.abc.MetaPathFinder):
    """Finds ``torch.cuda`` as usual, then replaces its ``synchronize`` once the module has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "torch.cuda":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            if not module.is_available():
                module.__dict__["synchronize"] = _no_sync

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _TorchCudaHook())
