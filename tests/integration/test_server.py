"""LocalTriton and `tritonrec serve` around the real tritonserver binary: clear errors, clean shutdown."""

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tritonrec.backends import ranker_cpu_model
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import ServerError
from tritonrec.repository import VARIANTS, build_repository
from tritonrec.serving.server import LocalTriton, find_tritonserver, free_port

pytestmark = pytest.mark.integration


def test_the_wheel_ships_the_binary_and_a_stub_for_this_python():
    install = find_tritonserver()
    assert install.binary.is_file() and install.stub.is_file()
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in str(install.stub)


def test_missing_repository_is_a_server_error(tmp_path):
    with pytest.raises(ServerError, match="does not exist"):
        LocalTriton(tmp_path / "nope").start()


def test_port_in_use_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerError, match=f"grpc port {port} is already in use"):
            LocalTriton(tmp_path, grpc_port=port).start()


def test_model_that_fails_to_load_is_reported_with_the_servers_reason(tmp_path):
    # ranker_cpu whose version folder has model.py but no ONNX file: initialize() fails inside the server.
    build_repository(tmp_path, FeatureSpec(n_items=10), [VARIANTS["ranker_cpu"]])
    version = tmp_path / "ranker_cpu" / "1"
    version.mkdir()
    shutil.copy(ranker_cpu_model.__file__, version / "model.py")
    server = LocalTriton(tmp_path, log_file=tmp_path / "server.log", models=["ranker_cpu"], startup_timeout_s=120)
    with pytest.raises(ServerError) as caught:
        server.start()
    assert "load failed for model 'ranker_cpu'" in str(caught.value)
    assert not server.is_running()


def _ready(http_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def test_serve_command_runs_until_sigterm_then_stops_cleanly(tmp_path):
    build_repository(tmp_path / "repo", FeatureSpec(n_items=10), [])
    ports = [free_port() for _ in range(3)]
    cmd = [
        sys.executable,
        "-m",
        "tritonrec",
        "serve",
        "--repo",
        str(tmp_path / "repo"),
        "--log-file",
        str(tmp_path / "server.log"),
    ]
    cmd += ["--grpc-port", str(ports[0]), "--http-port", str(ports[1]), "--metrics-port", str(ports[2])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _ready(ports[1]):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "stopped (exit code 0)" in out
    assert not _ready(ports[1])
