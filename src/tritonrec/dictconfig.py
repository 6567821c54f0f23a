"""Reading config dataclasses back from JSON dicts, strictly: an unknown key is a :class:`ConfigError`."""

from __future__ import annotations

import dataclasses
from typing import Any

from tritonrec.errors import ConfigError

__all__ = ["known_fields"]


def known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Return ``data`` after checking every key is a field of the dataclass ``cls``.

    Raises:
        ConfigError: ``data`` is not a dict, or has keys ``cls`` does not know (a typo, or a newer format).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__} must be given as an object, got {type(data).__name__}")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {unknown}")
    return dict(data)
