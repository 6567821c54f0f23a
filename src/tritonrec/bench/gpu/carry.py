"""What a GPU machine without a registry needs from here, packed small (``prepare.sh``) and unpacked there (``run.sh``).

The GPU machine has torch, numpy 2, grpcio and protobuf but no Triton server, no tritonclient and no internet, and
a call may take 64 MiB of files along. ``bench/gpu/prepare.sh`` gathers into ``.carry/`` (git-ignored):

- ``wheels/``: tritonclient (gRPC client and ``model_config_pb2``), python-rapidjson, protobuf and grpcio at the
  versions this project pins (tritonclient's generated code needs protobuf >= 6.33 and grpcio >= 1.81);
- ``tritonserver.tar.xz``: from the nvidia-pytriton wheel (55 MB), only what serving a Python-backend model on
  one Python version needs: the server binary, the Python backend, the stub for that Python, and the wheel's
  bundled libraries minus the libpython it bundles for another version (~27 MB packed, about half the wheel);
- ``perf_analyzer.xz``: the binary from the tritonclient 2.50 wheel; its ``libb64`` and ``libcudart.so.12``
  come from the server's bundled libraries;
- ``libpython3.X.so.1.0.xz`` (optional): a shared libpython for the stub, used only when the machine has none;
- ``checkpoint/``: the trained ``base`` model.

This module is standard library only (no torch, numpy or tritonclient), so ``run.sh`` can call it before anything
is installed: ``python -m tritonrec.bench.gpu.carry unpack CARRY WORK`` prints the ``export`` lines the script
evaluates.
"""

from __future__ import annotations

import argparse
import io
import lzma
import stat
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "SERVER_ARCHIVE",
    "PERF_ANALYZER_ARCHIVE",
    "carried_size",
    "main",
    "pack_file",
    "pack_server",
    "server_members",
    "unpack",
]

SERVER_ARCHIVE = "tritonserver.tar.xz"
PERF_ANALYZER_ARCHIVE = "perf_analyzer.xz"
_PERF_ANALYZER_IN_WHEEL = "tritonclient-2.50.0.data/data/bin/perf_analyzer"
_XZ_PRESET = 6


def server_members(names: Sequence[str], python: str) -> list[str]:
    """The entries of the nvidia-pytriton wheel that serving a Python-backend model on ``python`` (``3.12``) needs."""
    keep = []
    for name in names:
        if name.endswith("/") or "__pycache__" in name:
            continue
        if name == "pytriton/tritonserver/bin/tritonserver" or name.startswith("pytriton/tritonserver/backends/"):
            keep.append(name)
        elif name == f"pytriton/tritonserver/python_backend_stubs/{python}/triton_python_backend_stub":
            keep.append(name)
        elif name.startswith("nvidia_pytriton.libs/") and not Path(name).name.startswith("libpython"):
            keep.append(name)
    return keep


def pack_server(wheel: Path, out: Path, python: str) -> list[str]:
    """Write the :func:`server_members` of ``wheel`` to ``out`` (tar.xz, executable bits kept); return them.

    Raises:
        FileNotFoundError: the wheel has no stub for ``python``.
    """
    with zipfile.ZipFile(wheel) as z:
        members = server_members(z.namelist(), python)
        if not any(m.endswith("triton_python_backend_stub") for m in members):
            raise FileNotFoundError(f"{wheel.name} has no Python backend stub for Python {python}")
        with lzma.open(out, "wb", preset=_XZ_PRESET) as packed, tarfile.open(fileobj=packed, mode="w") as tar:
            for name in members:
                info = z.getinfo(name)
                data = z.read(name)
                entry = tarfile.TarInfo(name)
                entry.size = len(data)
                entry.mode = (info.external_attr >> 16) & 0o777 or 0o644
                tar.addfile(entry, io.BytesIO(data))
    return members


def pack_file(source: Path | bytes, out: Path) -> None:
    """Write one file (a path, or its bytes) xz-compressed to ``out``."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    out.write_bytes(lzma.compress(data, preset=_XZ_PRESET))


def perf_analyzer_from_wheel(wheel: Path) -> bytes:
    """The perf_analyzer binary inside the tritonclient 2.50 wheel."""
    with zipfile.ZipFile(wheel) as z:
        return z.read(_PERF_ANALYZER_IN_WHEEL)


def carried_size(root: Path) -> int:
    """Bytes of every file under ``root``."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _library_present(name: str, *dirs: str) -> bool:
    """Whether the dynamic linker finds ``name``: in ``dirs``, the usual folders, or ``ldconfig``'s cache."""
    usual = ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib")
    if any(d and (Path(d) / name).exists() for d in (*dirs, *usual)):
        return True
    try:
        listed = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout  # noqa: S607
    except (OSError, subprocess.TimeoutExpired):
        return False
    return f"{name} " in listed


def _libpython_present() -> bool:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    name = sysconfig.get_config_var("INSTSONAME") or f"libpython{version}.so.1.0"
    return _library_present(name, sysconfig.get_config_var("LIBDIR") or "")


def _unpack_perf_analyzer(carry: Path, work: Path, server_libs: Path) -> Path | None:
    source = carry / PERF_ANALYZER_ARCHIVE
    if not source.is_file():
        return None
    folder = work / "perf_analyzer"
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    (folder / "lib").mkdir(exist_ok=True)
    binary = folder / "bin" / "perf_analyzer"
    binary.write_bytes(lzma.decompress(source.read_bytes()))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    # perf_analyzer asks for these by their plain names; the server's wheel bundles them under hashed names
    # (OpenSSL 3 only where the machine has none: the system's is preferred)
    needed = [("libb64.so.0d", "libb64-*.so.0d"), ("libcudart.so.12", "libcudart-*.so.12*")]
    for plain, pattern in (("libssl.so.3", "libssl-*.so.3"), ("libcrypto.so.3", "libcrypto-*.so.3")):
        if not _library_present(plain):
            needed.append((plain, pattern))
    for plain, pattern in needed:
        bundled = sorted(server_libs.glob(pattern))
        link = folder / "lib" / plain
        if bundled and not link.exists():
            link.symlink_to(bundled[0])
    wrapper = folder / "perf_analyzer"
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        f'LD_LIBRARY_PATH="{folder / "lib"}:{server_libs}:${{LD_LIBRARY_PATH:-}}" exec "{binary}" "$@"\n'
    )
    wrapper.chmod(0o755)
    works = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True, timeout=30)  # noqa: S603
    if works.returncode != 0:
        print(f"# perf_analyzer does not start: {(works.stdout + works.stderr).strip()[-300:]}", file=sys.stderr)
        return None
    return folder


def unpack(carry: Path, work: Path) -> list[str]:
    """Unpack what ``carry`` holds into ``work``; return the shell ``export`` lines that make it usable.

    The wheels are installed by ``run.sh`` itself (pip); here: the server, perf_analyzer and, only where the
    machine has no shared libpython of this version, the carried one.
    """
    exports: list[str] = []
    work.mkdir(parents=True, exist_ok=True)
    server_archive = carry / SERVER_ARCHIVE
    if server_archive.is_file():
        with tarfile.open(server_archive, "r:xz") as tar:
            tar.extractall(work / "server", filter="tar")
        exports.append(f"export TRITONREC_TRITONSERVER_DIR={work / 'server' / 'pytriton' / 'tritonserver'}")
        libs = work / "server" / "nvidia_pytriton.libs"
        pa = _unpack_perf_analyzer(carry, work, libs)
        if pa is not None:
            exports.append(f'export PATH="{pa}:$PATH"')
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    libpython = carry / f"libpython{version}.so.1.0.xz"
    if libpython.is_file() and not _libpython_present():
        folder = work / "libpython"
        folder.mkdir(exist_ok=True)
        (folder / f"libpython{version}.so.1.0").write_bytes(lzma.decompress(libpython.read_bytes()))
        exports.append(f'export LD_LIBRARY_PATH="{folder}:${{LD_LIBRARY_PATH:-}}"')
        print(f"# no libpython{version}.so.1.0 on this machine: using the carried one", file=sys.stderr)
    return exports


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tritonrec.bench.gpu.carry {pack-server,pack-file,pack-perf-analyzer,size,unpack} ...``."""
    parser = argparse.ArgumentParser(prog="python -m tritonrec.bench.gpu.carry", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("pack-server", help="the server parts of the nvidia-pytriton wheel -> tar.xz")
    server.add_argument("wheel", type=Path)
    server.add_argument("out", type=Path)
    server.add_argument("--python", default="3.12", help="the stub's Python version (default 3.12)")
    one = sub.add_parser("pack-file", help="one file -> .xz")
    one.add_argument("source", type=Path)
    one.add_argument("out", type=Path)
    pa = sub.add_parser("pack-perf-analyzer", help="perf_analyzer from the tritonclient 2.50 wheel -> .xz")
    pa.add_argument("wheel", type=Path)
    pa.add_argument("out", type=Path)
    size = sub.add_parser("size", help="bytes of every file under a folder")
    size.add_argument("root", type=Path)
    there = sub.add_parser("unpack", help="unpack a carry folder; print export lines for the shell")
    there.add_argument("carry", type=Path)
    there.add_argument("work", type=Path)
    args = parser.parse_args(argv)
    if args.command == "pack-server":
        members = pack_server(args.wheel, args.out, args.python)
        print(f"{args.out}: {len(members)} files, {args.out.stat().st_size / 2**20:.1f} MiB")
    elif args.command == "pack-file":
        pack_file(args.source, args.out)
    elif args.command == "pack-perf-analyzer":
        pack_file(perf_analyzer_from_wheel(args.wheel), args.out)
    elif args.command == "size":
        print(carried_size(args.root))
    else:
        print("\n".join(unpack(args.carry, args.work)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
