"""A spec's PyTorch model, loaded the way the spec names it: a factory with weights, TorchScript, or a program.

The factory is ``package.module:callable`` found on ``model.python_path`` (relative to the spec file): a team's
own code, never copied into tritonrec. Loading needs torch; an ONNX-sourced spec has no module to load.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from tritonrec.errors import ConfigError, ExportError
from tritonrec.spec.model_spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["load_module", "spec_callable"]


def spec_callable(spec: ModelSpec, dotted: str, field: str) -> Any:
    """The callable ``package.module:callable`` named by the spec's ``field``, found on ``model.python_path``.

    Raises:
        ConfigError: it cannot be imported or is not callable.
    """
    module_name, _, attribute = dotted.partition(":")
    for folder in reversed(spec.model.python_path):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{field} {dotted!r} cannot be imported: {type(e).__name__}: {e}") from None
    if not callable(target):
        raise ConfigError(f"{field} {dotted!r} is not callable")
    return target


def _factory(spec: ModelSpec) -> Any:
    return spec_callable(spec, spec.model.factory or "", "model.factory")


def load_module(spec: ModelSpec) -> nn.Module:
    """The spec's model in eval mode on the CPU.

    Raises:
        ConfigError: the factory cannot be imported, or the spec's model is an ONNX file (nothing to load).
        ExportError: a weights, TorchScript or program file cannot be loaded into a module.
    """
    import torch

    source = spec.model
    if source.onnx is not None:
        raise ConfigError(f"spec {spec.name!r} names an ONNX file: there is no PyTorch module to load")
    try:
        if source.factory is not None:
            module = _factory(spec)(**source.factory_kwargs)
            if not isinstance(module, torch.nn.Module):
                raise ConfigError(
                    f"model.factory {source.factory!r} returned {type(module).__name__}, not an nn.Module"
                )
            if source.weights is not None:
                module.load_state_dict(torch.load(source.weights, map_location="cpu", weights_only=True))
        elif source.torchscript is not None:
            module = torch.jit.load(str(source.torchscript), map_location="cpu")  # type: ignore[no-untyped-call]
        else:
            module = torch.export.load(str(source.program)).module()
    except (OSError, RuntimeError, KeyError) as e:
        raise ExportError(f"spec {spec.name!r}: cannot load its {source.kind} model: {type(e).__name__}: {e}") from e
    loaded: nn.Module = module.eval()
    return loaded
