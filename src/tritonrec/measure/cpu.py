"""CPU seconds a load generator and the server spend (psutil): who was the bottleneck on a shared machine.

On a machine where the load generator, perf_analyzer and tritonserver share the cores, a throughput figure says
as much about the generator as about the server. Each measured point records the CPU seconds of our generator
(this process), of perf_analyzer (its child process) and of tritonserver with its Python-backend stubs (found by
the port it listens on, when it runs on this machine), the server split into tritonserver's own process (gRPC,
the batcher, the backend's side of the hand-off) and its child processes (the Python-backend stubs, where the
model runs).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

__all__ = ["CpuMark", "CpuMeter", "CpuUsage", "server_process"]


def server_process(url: str) -> psutil.Process | None:
    """The local process listening on ``url``'s port (tritonserver), None when it is elsewhere or hidden."""
    host_port = url.split("://", 1)[-1]
    port = urlsplit(f"//{host_port}").port
    if port is None:
        return None
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            with contextlib.suppress(psutil.NoSuchProcess):
                return psutil.Process(conn.pid)
    return None


def _process_cpu_s(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        times = process.cpu_times()
        return float(times.user + times.system)
    return 0.0


def _tree_cpu_s(process: psutil.Process) -> tuple[float, float]:
    """CPU seconds of ``process`` itself and of all its children (``process.children`` raises NoSuchProcess)."""
    return _process_cpu_s(process), sum(_process_cpu_s(p) for p in process.children(recursive=True))


def _own_cpu_s() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _children_cpu_s() -> float:
    times = psutil.Process().cpu_times()
    return float(times.children_user + times.children_system)


@dataclass(slots=True)
class CpuUsage:
    """CPU seconds spent during one measurement.

    Attributes:
        generator_s: this process (our load generator, the client).
        children_s: child processes that finished during the measurement (perf_analyzer, locust).
        server_s: tritonserver and its stubs (None when it does not run on this machine).
        wall_s: elapsed wall time.
    """

    generator_s: float = 0.0
    children_s: float = 0.0
    server_s: float | None = None
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready dict, rounded to milliseconds."""
        return {
            "generator_s": round(self.generator_s, 3),
            "children_s": round(self.children_s, 3),
            "server_s": None if self.server_s is None else round(self.server_s, 3),
            "wall_s": round(self.wall_s, 3),
        }


@dataclass(frozen=True, slots=True)
class CpuMark:
    """CPU seconds so far, for deltas over measurement windows.

    Attributes:
        generator_s: this process.
        server_s: tritonserver and its children (None where it does not run here).
        frontend_s: tritonserver's own process, without its children (None likewise).
        at_s: ``time.perf_counter()`` when taken.
    """

    generator_s: float
    server_s: float | None
    frontend_s: float | None
    at_s: float


class CpuMeter:
    """Measures :class:`CpuUsage` over a ``with meter.measure() as usage:`` block.

    Args:
        server: the server process (see :func:`server_process`), or None.
    """

    def __init__(self, server: psutil.Process | None) -> None:
        self.server = server

    @contextlib.contextmanager
    def measure(self) -> Iterator[CpuUsage]:
        """Fill a :class:`CpuUsage` with the CPU spent while the block runs."""
        usage = CpuUsage()
        own, children, started = _own_cpu_s(), _children_cpu_s(), time.perf_counter()
        server = self._server_total_s()
        try:
            yield usage
        finally:
            usage.generator_s = _own_cpu_s() - own
            usage.children_s = _children_cpu_s() - children
            after = self._server_total_s()
            usage.server_s = None if server is None or after is None else after - server
            usage.wall_s = time.perf_counter() - started

    def mark(self) -> CpuMark:
        """CPU seconds so far of this process and of the server (None where unknown), for deltas over windows."""
        split = self._server_cpu_s()
        if split is None:
            return CpuMark(_own_cpu_s(), None, None, time.perf_counter())
        return CpuMark(_own_cpu_s(), sum(split), split[0], time.perf_counter())

    def _server_total_s(self) -> float | None:
        split = self._server_cpu_s()
        return None if split is None else sum(split)

    def _server_cpu_s(self) -> tuple[float, float] | None:
        if self.server is None:
            return None
        try:
            return _tree_cpu_s(self.server)
        except psutil.NoSuchProcess:
            return None
