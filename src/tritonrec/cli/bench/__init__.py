"""``tritonrec bench ...``: every study; each writes JSON + Markdown (+ PNG) and prints its Markdown.

One module per group of studies (:mod:`tritonrec.bench`'s subpackages), each registering its own subcommands;
:mod:`~tritonrec.cli.bench.options` holds the arguments they share and the one ending. Only ``bench quality`` and
``bench compression`` train (torch) and ``bench gpu`` runs the model in PyTorch; the others need the client, the
load generators and, with ``--export``, the bundled server. Library imports happen inside the handlers, so
``bench sweep --url`` runs on a ``tritonrec[bench]`` install.
"""

from __future__ import annotations

import argparse

from tritonrec.cli.bench import gpu, models, reliability, serving, tuning

__all__ = ["register"]


def register(p: argparse.ArgumentParser) -> None:
    """The ``tritonrec bench`` subcommands, in the order ``--help`` lists them."""
    sub = p.add_subparsers(dest="bench_command", required=True)
    for group in (models, serving, reliability, tuning, gpu):
        group.register(sub)
