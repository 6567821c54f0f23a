"""Packing what the GPU machine needs (prepare.sh) and unpacking it there (run.sh), on stand-in wheels: which files
of the pytriton wheel travel, executable bits, perf_analyzer's libraries under their plain names."""

import stat
import sys
import tarfile
import zipfile

import pytest

from tritonrec.bench.gpu.carry import (
    PERF_ANALYZER_ARCHIVE,
    SERVER_ARCHIVE,
    carried_size,
    main,
    pack_file,
    pack_server,
    server_members,
    unpack,
)

pytestmark = pytest.mark.unit

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
WHEEL_FILES = {
    "pytriton/__init__.py": (b"", 0o644),
    "pytriton/client/client.py": (b"", 0o644),
    "pytriton/tritonserver/bin/tritonserver": (b"#!/bin/sh\n", 0o755),
    "pytriton/tritonserver/backends/python/libtriton_python.so": (b"so", 0o644),
    "pytriton/tritonserver/backends/python/triton_python_backend_utils.py": (b"", 0o644),
    "pytriton/tritonserver/backends/python/__pycache__/x.pyc": (b"", 0o644),
    f"pytriton/tritonserver/python_backend_stubs/{VERSION}/triton_python_backend_stub": (b"stub", 0o755),
    "pytriton/tritonserver/python_backend_stubs/3.8/triton_python_backend_stub": (b"old stub", 0o755),
    "nvidia_pytriton.libs/libtritonserver-717102f0.so": (b"so", 0o644),
    "nvidia_pytriton.libs/libb64-98cb6333.so.0d": (b"so", 0o644),
    "nvidia_pytriton.libs/libcudart-09529672.so.12.6.77": (b"so", 0o644),
    "nvidia_pytriton.libs/libpython3-419a3a08.13.so.1.0": (b"30 MB", 0o755),
}


def _wheel(path, files=WHEEL_FILES):
    with zipfile.ZipFile(path, "w") as z:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            z.writestr(info, data)
    return path


def test_only_the_server_backend_this_stub_and_the_libraries_travel():
    kept = server_members(list(WHEEL_FILES), VERSION)
    assert "pytriton/tritonserver/bin/tritonserver" in kept
    assert f"pytriton/tritonserver/python_backend_stubs/{VERSION}/triton_python_backend_stub" in kept
    assert "nvidia_pytriton.libs/libcudart-09529672.so.12.6.77" in kept
    dropped = set(WHEEL_FILES) - set(kept)
    assert dropped == {
        "pytriton/__init__.py",
        "pytriton/client/client.py",
        "pytriton/tritonserver/backends/python/__pycache__/x.pyc",
        "pytriton/tritonserver/python_backend_stubs/3.8/triton_python_backend_stub",
        "nvidia_pytriton.libs/libpython3-419a3a08.13.so.1.0",
    }


def test_packed_server_keeps_executable_bits_and_refuses_a_missing_stub(tmp_path):
    wheel = _wheel(tmp_path / "nvidia_pytriton-0.7.0-py3-none-manylinux_2_35_x86_64.whl")
    out = tmp_path / SERVER_ARCHIVE
    members = pack_server(wheel, out, VERSION)
    with tarfile.open(out, "r:xz") as tar:
        assert sorted(tar.getnames()) == sorted(members)
        assert tar.getmember("pytriton/tritonserver/bin/tritonserver").mode & stat.S_IXUSR
        assert not tar.getmember("nvidia_pytriton.libs/libb64-98cb6333.so.0d").mode & stat.S_IXUSR
    with pytest.raises(FileNotFoundError, match="no Python backend stub for Python 3.99"):
        pack_server(wheel, tmp_path / "other.tar.xz", "3.99")


def test_unpacked_carry_gives_the_server_and_a_perf_analyzer_that_finds_its_libraries(tmp_path, capsys):
    carry = tmp_path / "carry"
    carry.mkdir()
    pack_server(_wheel(tmp_path / "pytriton.whl"), carry / SERVER_ARCHIVE, VERSION)
    stand_in = tmp_path / "perf_analyzer"  # prints its library path, as a stand-in for the real binary
    stand_in.write_text('#!/usr/bin/env bash\necho "libs: $LD_LIBRARY_PATH"\n')
    pack_file(stand_in, carry / PERF_ANALYZER_ARCHIVE)
    pack_file(b"not a real libpython", carry / f"libpython{VERSION}.so.1.0.xz")
    work = tmp_path / "work"
    exports = unpack(carry, work)
    server = work / "server" / "pytriton" / "tritonserver"
    assert exports[0] == f"export TRITONREC_TRITONSERVER_DIR={server}"
    assert (server / "bin" / "tritonserver").stat().st_mode & stat.S_IXUSR
    assert exports[1] == f'export PATH="{work / "perf_analyzer"}:$PATH"'
    lib = work / "perf_analyzer" / "lib"
    assert (lib / "libb64.so.0d").resolve().name == "libb64-98cb6333.so.0d"
    assert (lib / "libcudart.so.12").resolve().name == "libcudart-09529672.so.12.6.77"
    assert not (work / "libpython").exists()  # this machine has its own libpython: the carried one stays packed
    assert len(exports) == 2
    assert main(["size", str(carry)]) == 0 and int(capsys.readouterr().out) == carried_size(carry) > 0


def test_a_perf_analyzer_that_does_not_start_is_left_off_the_path(tmp_path):
    carry = tmp_path / "carry"
    carry.mkdir()
    pack_server(_wheel(tmp_path / "pytriton.whl"), carry / SERVER_ARCHIVE, VERSION)
    pack_file(b"\x7fELF not really", carry / PERF_ANALYZER_ARCHIVE)
    exports = unpack(carry, tmp_path / "work")
    assert len(exports) == 1 and exports[0].startswith("export TRITONREC_TRITONSERVER_DIR=")
