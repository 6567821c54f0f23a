"""What every benchmark record carries, and the one writer of its files (JSON + Markdown + PNG).

A record is a JSON object whose first keys say where and with what a figure was measured:

- ``command``: the exact command line that produced it;
- ``date``: UTC time the run started;
- ``host``: :class:`HostFacts` (CPU model and ISA flags, cores the process may use, cgroup CPU quota, memory, GPU);
- ``versions``: :func:`tool_versions` (tritonrec with its git commit, tritonserver, tritonclient, onnxruntime,
  torch if installed, perf_analyzer, locust, ...).

Nothing here imports torch or any other heavy package: versions are read from installed package metadata, so a
client-only or bench-only install records them too. :func:`write_report` writes ``<stem>.json`` and
``<stem>.md`` (and any plots) into one folder and returns a :class:`Report` with the Markdown it wrote, which
the CLI prints; no runner reads its own files back.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ISA_FLAGS",
    "HostFacts",
    "Progress",
    "RecordEntry",
    "Report",
    "available_cpus",
    "cgroup_cpu_quota",
    "git_commit",
    "host_facts",
    "markdown_header",
    "new_record",
    "quiet",
    "record_index",
    "results_folder",
    "tool_versions",
    "write_report",
]

Progress = Callable[[str], None]
"""Where a long-running benchmark says what it is doing (the CLI prints it; the default says nothing)."""


def quiet(message: str) -> None:
    """A :data:`Progress` that drops every message."""


ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
"""The instruction-set flags that decide which kernels ONNX Runtime, OpenVINO and torch pick (INT8 above all)."""

_PACKAGES = (
    "tritonclient",
    "grpcio",
    "numpy",
    "onnxruntime",
    "onnx",
    "torch",
    "nvidia-pytriton",
    "locust",
    "matplotlib",
    "hdrhistogram",
    "psutil",
)
_PYTRITON_TRITON = {"0.7.0": "2.51.0"}  # the tritonserver release inside each nvidia-pytriton wheel we pin
_PERF_ANALYZER_WHEEL = "tritonclient 2.50.0"  # bench/tools/install_perf_analyzer.sh takes the binary from it


@dataclass(frozen=True, slots=True, kw_only=True)
class HostFacts:
    """The machine a figure was measured on.

    Attributes:
        hostname: the machine's name.
        platform: OS and kernel (``platform.platform()``).
        python: interpreter version.
        cpu_model: ``model name`` from ``/proc/cpuinfo`` (or ``platform.processor()``).
        cpu_count: logical CPUs of the machine (``os.cpu_count()``).
        cpu_affinity: CPUs this process may run on (``sched_getaffinity``).
        cpu_quota: CPUs the cgroup's ``cpu.max`` quota allows (None = no quota).
        isa: which of :data:`ISA_FLAGS` the CPU has.
        memory_gib: physical memory.
        gpu: ``nvidia-smi`` GPU names, or ``none``.
    """

    hostname: str
    platform: str
    python: str
    cpu_model: str
    cpu_count: int
    cpu_affinity: int
    cpu_quota: float | None
    isa: tuple[str, ...]
    memory_gib: float
    gpu: str

    @property
    def label(self) -> str:
        """The machine in a results folder's name: CPU family, ``amx`` where it has AMX, cores (``epyc-2c``).

        Machines differ in the kernels they run (VNNI, AMX, BF16), so records of two machines never share a
        folder: ``bench/results/<date>-<label>/`` (with a GPU: its first name, ``h200``).
        """
        model = self.cpu_model.lower()
        family = next((f for f in _CPU_FAMILIES if f in model), "cpu")
        amx = "-amx" if "amx_int8" in self.isa else ""
        gpu = self.gpu.split(",")[0].strip().lower() if self.gpu not in ("none", "") else ""
        gpu_part = "-" + next((w for w in gpu.replace("nvidia", "").split() if any(c.isdigit() for c in w)), "gpu")
        return f"{family}{amx}-{self.cpu_affinity}c" + (gpu_part if gpu else "")


_CPU_FAMILIES = ("epyc", "xeon", "ryzen", "core", "neoverse", "graviton")


def results_folder(root: Path, date: dt.date | None = None, host: HostFacts | None = None) -> Path:
    """``root/<date>-<machine label>``: where this machine's records of ``date`` (default today) belong."""
    day = (date or dt.datetime.now(dt.UTC).date()).isoformat()
    return root / f"{day}-{(host or host_facts()).label}"


@dataclass(frozen=True, slots=True)
class Report:
    """A written benchmark report: its record, the files :func:`write_report` wrote, the Markdown (to print)."""

    record: Mapping[str, Any]
    json_path: Path
    markdown_path: Path
    markdown: str
    plots: tuple[Path, ...] = field(default_factory=tuple)


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = "", set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model or platform.processor() or platform.machine(), flags


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), the machine's count where there is no mask."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup CPU quota (``cpu.max``), None when unlimited or unknown."""
    from tritonrec.backends.ranker_cpu_model import cgroup_cpu_limit

    limit = cgroup_cpu_limit(root)
    return None if limit is None else round(limit, 3)


def _memory_gib() -> float:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        return 0.0


def _gpus() -> str:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "none"
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (nvidia-smi failed)"
    names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return ", ".join(names) if done.returncode == 0 and names else "none"


def host_facts() -> HostFacts:
    """Describe this machine (cheap: reads /proc and /sys, runs nvidia-smi only where it exists)."""
    model, flags = _cpuinfo()
    return HostFacts(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=platform.python_version(),
        cpu_model=model,
        cpu_count=os.cpu_count() or 1,
        cpu_affinity=available_cpus(),
        cpu_quota=cgroup_cpu_quota(),
        isa=tuple(f for f in ISA_FLAGS if f in flags),
        memory_gib=_memory_gib(),
        gpu=_gpus(),
    )


def git_commit(path: Path | None = None) -> str | None:
    """Short commit of the git checkout holding ``path`` (default: this package), ``-dirty`` if it has changes."""
    where = path or Path(__file__).resolve().parent
    git = shutil.which("git")
    if git is None:
        return None
    try:
        head = subprocess.run([git, "rev-parse", "--short=12", "HEAD"], cwd=where, capture_output=True, text=True)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            [git, "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True
        )
    except OSError:
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def tool_versions(*, tritonserver: str | None = None, perf_analyzer: bool = False) -> dict[str, str | None]:
    """Versions of tritonrec (with its git commit) and of every tool a figure may depend on.

    Args:
        tritonserver: the server's own version (from its metadata) when a running endpoint was measured; otherwise
            the release inside the installed nvidia-pytriton wheel, if any.
        perf_analyzer: perf_analyzer took part (its version is that of the wheel the installer takes it from).

    Returns:
        ``{name: version}``; None where a package is not installed.
    """
    commit = git_commit()
    own = _version("tritonrec") or "unknown"
    versions: dict[str, str | None] = {"tritonrec": f"{own} ({commit})" if commit else own}
    versions.update({name: _version(name) for name in _PACKAGES})
    pytriton = versions.get("nvidia-pytriton")
    versions["tritonserver"] = tritonserver or (_PYTRITON_TRITON.get(pytriton or "") if pytriton else None)
    versions["perf_analyzer"] = _PERF_ANALYZER_WHEEL if perf_analyzer else None
    return versions


def new_record(command: str, **versions: Any) -> dict[str, Any]:
    """The first keys of every benchmark record: ``command``, ``date``, ``host`` and ``versions``.

    Args:
        command: the command line that produced the record.
        **versions: passed to :func:`tool_versions` (``tritonserver=``, ``perf_analyzer=``).
    """
    return {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": asdict(host_facts()),
        "versions": tool_versions(**versions),
    }


def _host_line(host: Mapping[str, Any]) -> str:
    quota = host.get("cpu_quota")
    cpus = f"{host['cpu_count']} CPUs ({host['cpu_affinity']} usable" + (f", quota {quota:g}" if quota else "") + ")"
    isa = " ".join(host.get("isa", ())) or "none of the tracked flags"
    return f"Host: {host['cpu_model']}, {cpus}, ISA {isa}, {host['memory_gib']:g} GiB, GPU: {host['gpu']}"


def _versions_line(versions: Mapping[str, Any]) -> str:
    shown = (
        "tritonrec",
        "tritonserver",
        "tritonclient",
        "onnxruntime",
        "torch",
        "perf_analyzer",
        "model_analyzer",
        "locust",
    )
    return "Versions: " + ", ".join(f"{name} {versions[name]}" for name in shown if versions.get(name))


def markdown_header(title: str, record: Mapping[str, Any]) -> list[str]:
    """First lines of a report's Markdown: title, command, date, host and versions (from :func:`new_record`)."""
    return [
        f"# {title}",
        "",
        f"Command: `{record['command']}`  ",
        f"Date: {record['date']}  ",
        _host_line(record["host"]) + "  ",
        _versions_line(record["versions"]),
        "",
    ]


def write_report(
    out_dir: Path,
    stem: str,
    record: Mapping[str, Any],
    markdown: str,
    plots: Mapping[str, Callable[[Path], object]] | None = None,
) -> Report:
    """Write ``<stem>.json``, ``<stem>.md`` and each plot (``{file name: draw(path)}``) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    markdown_path.write_text(text)
    drawn = []
    for name, draw in (plots or {}).items():
        draw(out_dir / name)
        drawn.append(out_dir / name)
    return Report(record, json_path, markdown_path, text, tuple(drawn))


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """One record under a results folder, as :func:`record_index` reads it back.

    Attributes:
        path: the record's JSON, relative to the results root.
        command: the command line that made it.
        date: UTC date it started (``""`` where the record predates the field).
        cpu: the CPU model and whether it has AMX (``""`` where the record named none).
        commit: the tritonrec commit it ran from, ``-dirty`` when the tree had uncommitted changes (None: not named).
    """

    path: Path
    command: str
    date: str
    cpu: str
    commit: str | None

    @property
    def committed(self) -> bool:
        """Made from a committed tree (a record that names no commit cannot show it was)."""
        return self.commit is not None and not self.commit.endswith("-dirty")


def record_index(root: Path) -> list[RecordEntry]:
    """Every record under ``root`` (a JSON object with ``command`` and ``host``), in path order."""
    entries = []
    for path in sorted(root.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(record, dict) or "command" not in record or "host" not in record:
            continue
        host = record["host"]
        cpu = host.get("cpu_model", "")
        if cpu and "amx_int8" in host.get("isa", ()):
            cpu += " (AMX)"
        tritonrec = (record.get("versions") or {}).get("tritonrec") or ""
        commit = tritonrec.split("(", 1)[1].rstrip(")") if "(" in tritonrec else None
        entries.append(RecordEntry(path.relative_to(root), record["command"], record.get("date", "")[:10], cpu, commit))
    return entries
