"""What a served measurement point costs: GPU busy time (``nvidia-smi`` sampled), server and generator CPU.

- :class:`GpuSampler` runs ``nvidia-smi --query-gpu=... -lms <period>`` while a point runs and summarises
  utilization (the share of each sample period in which a kernel was running: a coarse "busy", not a measure of
  how full the GPU's units are), memory, power and SM clock. Without ``nvidia-smi`` it records nothing.
- :func:`process_group_cpu_s` sums the CPU seconds of every process in a process group (``/proc``): the
  tritonserver process and its Python-backend stubs (``LocalTriton`` starts the server as a group leader).
- :func:`children_cpu_s` / :func:`self_cpu_s`: CPU seconds of finished child processes (perf_analyzer) and of
  this process (the in-process load generator).

Imports nothing heavy: no torch.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["GpuSampler", "children_cpu_s", "process_group_cpu_s", "self_cpu_s"]

_QUERY = "utilization.gpu,memory.used,power.draw,clocks.sm"
_FIELDS = ("util_pct", "memory_used_mib", "power_w", "sm_clock_mhz")


def _ticks_per_second() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100


def process_group_cpu_s(pgid: int, proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds so far of every live process whose process group is ``pgid`` (0.0 off Linux)."""
    total_ticks = 0
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 12 and int(fields[2]) == pgid:
            total_ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return total_ticks / _ticks_per_second()


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's finished, waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(usage.ru_utime + usage.ru_stime)


def self_cpu_s() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return float(usage.ru_utime + usage.ru_stime)


class GpuSampler:
    """Samples GPU ``index`` with ``nvidia-smi`` every ``period_ms`` between ``start()`` and ``stop()``.

    Use as a context manager; :meth:`summary` then returns the means and maxima (or ``{"samples": 0}`` where
    ``nvidia-smi`` is missing or printed nothing).
    """

    def __init__(self, index: int = 0, period_ms: int = 200) -> None:
        self.index = index
        self.period_ms = period_ms
        self.samples: list[tuple[float, ...]] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> GpuSampler:
        """Start sampling (does nothing without ``nvidia-smi``)."""
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return self
        cmd = [smi, f"--query-gpu={_QUERY}", "--format=csv,noheader,nounits", f"-lms={self.period_ms}",
               f"--id={self.index}"]  # fmt: skip
        self._process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # noqa: S603
        stream = self._process.stdout
        self._reader = threading.Thread(target=self._read, args=(stream,), name="tritonrec-nvidia-smi", daemon=True)
        self._reader.start()
        return self

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                self.samples.append(tuple(float(v) for v in line.split(",")))
            except ValueError:  # "[N/A]" fields on some GPUs
                continue

    def stop(self) -> None:
        """Stop sampling."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None

    def summary(self) -> dict[str, Any]:
        """Means and maxima of each sampled field, and the number of samples."""
        rows = [s for s in self.samples if len(s) == len(_FIELDS)]
        out: dict[str, Any] = {"samples": len(rows)}
        for i, name in enumerate(_FIELDS):
            values = [row[i] for row in rows]
            if values:
                out[f"{name}_mean"] = round(sum(values) / len(values), 1)
                out[f"{name}_max"] = round(max(values), 1)
        return out

    def __enter__(self) -> GpuSampler:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
