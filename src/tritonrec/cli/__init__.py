"""The ``tritonrec`` command line."""

from tritonrec.cli.main import main

__all__ = ["main"]
