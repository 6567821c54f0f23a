"""Opening data files: plain or gzip, with clear errors for missing or unreadable files."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import IO

from tritonrec.errors import DataError

__all__ = ["find_data_file", "open_text"]


def find_data_file(directory: Path, name: str) -> Path:
    """Return ``directory/name`` or ``directory/name.gz``, whichever exists.

    Raises:
        DataError: neither exists.
    """
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"data file not found: {directory / name} (nor {name}.gz)")


def open_text(path: Path) -> IO[str]:
    """Open ``path`` for reading text (UTF-8), transparently un-gzipping ``.gz`` files."""
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
        return path.open("r", encoding="utf-8")
    except OSError as e:
        raise DataError(f"cannot open {path}: {e}") from e
