"""Where LocalTriton finds the server: the installed nvidia-pytriton wheel, or an unpacked copy of its server folder
named by TRITONREC_TRITONSERVER_DIR (what bench/gpu/run.sh unpacks on a machine without the wheel)."""

import os
import sys
from pathlib import Path

import pytest

from tritonrec.errors import ServerError
from tritonrec.serving.server import TRITONSERVER_DIR_ENV, find_tritonserver, prepare_backends, server_environment

pytestmark = pytest.mark.unit

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def _layout(root, *, stub=True):
    server = root / "pytriton" / "tritonserver"
    (server / "bin").mkdir(parents=True)
    (server / "bin" / "tritonserver").write_text("binary")
    (server / "backends" / "python").mkdir(parents=True)
    (root / "nvidia_pytriton.libs").mkdir()
    if stub:
        (server / "python_backend_stubs" / VERSION).mkdir(parents=True)
        (server / "python_backend_stubs" / VERSION / "triton_python_backend_stub").write_text("stub")
    return server


def test_the_environment_variable_names_an_unpacked_server(tmp_path, monkeypatch):
    server = _layout(tmp_path)
    monkeypatch.setenv(TRITONSERVER_DIR_ENV, str(server))
    install = find_tritonserver()
    assert install.binary == server / "bin" / "tritonserver"
    assert install.stub.parent.name == VERSION and install.libs == tmp_path / "nvidia_pytriton.libs"


def test_an_unpacked_server_without_this_pythons_stub_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(TRITONSERVER_DIR_ENV, str(_layout(tmp_path, stub=False)))
    with pytest.raises(ServerError, match=f"triton_python_backend_stub is missing .*Python {VERSION}"):
        find_tritonserver()


def test_backends_are_copied_with_this_pythons_stub_and_the_environment_finds_the_libraries(tmp_path, monkeypatch):
    monkeypatch.setenv(TRITONSERVER_DIR_ENV, str(_layout(tmp_path / "wheel")))
    install = find_tritonserver()
    backends = prepare_backends(install, tmp_path / "copy")
    assert (backends / "python" / "triton_python_backend_stub").read_text() == "stub"
    env = server_environment(install, {"LD_LIBRARY_PATH": "/opt/x", "PATH": "/usr/bin"})
    assert env["LD_LIBRARY_PATH"].split(os.pathsep)[:2] == [str(install.libs), "/opt/x"]
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]
    assert set(env) == {"LD_LIBRARY_PATH", "PATH"}  # a launcher merges them into its own environment
