"""LocalTriton: the real ``tritonserver`` binary from the nvidia-pytriton wheel, started, health-checked, stopped.

The wheel ships Triton 2.51 (the NGC 24.10 release) with the Python backend only, so on a machine without a
GPU the ``ranker_cpu`` variant (Python backend running ONNX Runtime) is what it serves. Three things make it run:

- the Python backend needs the stub built for the running interpreter inside its backend folder; we copy the
  wheel's backend folder to a private temporary folder and put the stub there (site-packages stays untouched);
- the stub finds the wheel's bundled libraries through an RPATH relative to its own folder, which the copy
  breaks, so the server runs with ``LD_LIBRARY_PATH`` pointing at them;
- the stub embeds ``libpython`` and finds its environment through ``PATH`` (as pytriton does), so the server
  starts with this interpreter's ``bin`` folder first on ``PATH``: models then import numpy/onnxruntime from
  the same virtual environment; this interpreter's ``LIBDIR`` (where its ``libpython`` lives) is added to
  ``LD_LIBRARY_PATH`` for the stub.

Where the wheel is not installed but its server files are (``bench/gpu/prepare.sh`` carries a pruned copy to
machines without a registry), :data:`TRITONSERVER_DIR_ENV` names the wheel's ``tritonserver`` folder.

Use it as a context manager (tests, the demo) or through ``tritonrec serve``::

    with LocalTriton(Path("model_repository")) as server:
        client = tritonclient.grpc.InferenceServerClient(server.grpc_url)
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from tritonrec.errors import ServerError

__all__ = [
    "KEEPALIVE_ARGS",
    "TRITONSERVER_DIR_ENV",
    "LocalTriton",
    "TritonInstall",
    "find_tritonserver",
    "free_port",
    "prepare_backends",
    "repository_models",
    "server_environment",
]

logger = logging.getLogger(__name__)

_LOG_TAIL_LINES = 40
KEEPALIVE_ARGS = (
    # Clients may ping an idle connection (ClientOptions.keepalive_idle) as often as every 10 s without being
    # answered GOAWAY "too_many_pings" (Triton's defaults refuse idle pings, and any ping more often than 5 min).
    "--grpc-keepalive-permit-without-calls=1",
    "--grpc-http2-min-recv-ping-interval-without-data=10000",
)
"""gRPC keepalive flags every ``LocalTriton`` (and the Helm chart's Triton) starts with."""
_POLL_SECONDS = 0.2
_STOP_GRACE_SECONDS = 30.0

TRITONSERVER_DIR_ENV = "TRITONREC_TRITONSERVER_DIR"
"""Environment variable naming a ``tritonserver`` folder laid out as in the wheel (``bin/``, ``backends/``,
``python_backend_stubs/``, the libraries in ``../../nvidia_pytriton.libs``); used instead of the installed wheel."""


@dataclass(frozen=True, slots=True)
class TritonInstall:
    """Where the wheel keeps the server binary, the Python backend and the stub for this interpreter."""

    binary: Path
    backends: Path
    stub: Path
    libs: Path


def _wheel_root() -> Path:
    override = os.environ.get(TRITONSERVER_DIR_ENV)
    if override:
        return Path(override)
    try:
        import pytriton  # optional dependency: only needed to serve
    except ImportError as e:
        raise ServerError(
            "the Triton server binary comes with the nvidia-pytriton wheel: pip install 'tritonrec[serve]' "
            f"(or set {TRITONSERVER_DIR_ENV} to an unpacked copy of its tritonserver folder)"
        ) from e
    return Path(pytriton.__file__).parent / "tritonserver"


def find_tritonserver() -> TritonInstall:
    """Locate the ``tritonserver`` binary shipped in the nvidia-pytriton wheel (or under :data:`TRITONSERVER_DIR_ENV`).

    Raises:
        ServerError: the wheel is not installed, or has no stub for this Python version.
    """
    root = _wheel_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    install = TritonInstall(
        binary=root / "bin" / "tritonserver",
        backends=root / "backends",
        stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
        libs=root.parent.parent / "nvidia_pytriton.libs",
    )
    for path in (install.binary, install.backends / "python", install.stub, install.libs):
        if not path.exists():
            raise ServerError(f"{path} is missing from the nvidia-pytriton install (Python {version})")
    return install


def prepare_backends(install: TritonInstall, dest: Path) -> Path:
    """Copy the wheel's backend folder to ``dest`` with the Python stub for this interpreter in it; ``dest``.

    The server's ``--backend-directory`` is then ``dest`` (site-packages stays untouched). ``dest`` must not exist.
    """
    shutil.copytree(install.backends, dest, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(install.stub, dest / "python" / "triton_python_backend_stub")
    return dest


def server_environment(install: TritonInstall, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables ``tritonserver`` needs on top of ``base`` (default: this process's environment).

    ``LD_LIBRARY_PATH``: the wheel's bundled libraries (the copied stub lost its relative RPATH to them), then
    ``base``'s, then this interpreter's ``LIBDIR`` (its ``libpython``, which the stub embeds). ``PATH``: this
    interpreter's ``bin`` folder first, so the stub's models import numpy/onnxruntime from this environment.
    Only these two variables are returned; a launcher merges them into the environment it starts the server with.
    """
    env = os.environ if base is None else base
    libpython_dir = sysconfig.get_config_var("LIBDIR") or ""
    return {
        "LD_LIBRARY_PATH": os.pathsep.join(
            filter(None, [str(install.libs), env.get("LD_LIBRARY_PATH", ""), libpython_dir])
        ),
        "PATH": os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH", "")])),
    }


def repository_models(repository: Path) -> list[str]:
    """The model folders (those with a ``config.pbtxt``) of a model repository, sorted."""
    return sorted(p.parent.name for p in repository.glob("*/config.pbtxt"))


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check_port_free(port: int, name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free for the server
        try:
            s.bind(("0.0.0.0", port))
        except OSError as e:
            raise ServerError(
                f"{name} port {port} is already in use ({e.strerror}); pick another with --{name}-port"
            ) from e


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - localhost health probe
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class LocalTriton:
    """A ``tritonserver`` process serving one model repository on 127.0.0.1.

    Args:
        repository: the model repository folder.
        grpc_port: gRPC port (0 = pick a free one); likewise ``http_port`` and ``metrics_port``.
        log_file: where the server's stdout/stderr go; None = inherit this process's terminal (streaming).
        models: load only these models; None = every model in the repository. The server always runs with
            explicit model control, so models can be loaded, reloaded and unloaded while it runs.
        startup_timeout_s: seconds to wait for the server and its models to become ready.
        extra_args: more ``tritonserver`` flags, passed verbatim.
    """

    def __init__(
        self,
        repository: Path,
        *,
        grpc_port: int = 0,
        http_port: int = 0,
        metrics_port: int = 0,
        log_file: Path | None = None,
        models: Sequence[str] | None = None,
        startup_timeout_s: float = 180.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.repository = repository
        self.grpc_port = grpc_port or free_port()
        self.http_port = http_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.log_file = log_file
        self.models = list(models) if models is not None else None
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._log_handle: IO[bytes] | None = None
        self.returncode: int | None = None  # exit code of the last stopped server

    @property
    def grpc_url(self) -> str:
        """``host:port`` for ``tritonclient.grpc``."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP/REST endpoint."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        """URL of the Prometheus metrics endpoint."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def command(self, install: TritonInstall, backend_dir: Path) -> list[str]:
        """The ``tritonserver`` command line this instance runs."""
        cmd = [
            str(install.binary),
            f"--model-repository={self.repository.resolve()}",
            f"--backend-directory={backend_dir}",
            f"--grpc-port={self.grpc_port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true",
            "--log-verbose=0",
        ]
        cmd.append("--model-control-mode=explicit")
        cmd.extend(f"--load-model={name}" for name in self.served_models)
        return cmd + list(KEEPALIVE_ARGS) + self.extra_args

    @property
    def served_models(self) -> list[str]:
        """The models loaded at start: ``models``, or every model folder of the repository."""
        return self.models if self.models is not None else repository_models(self.repository)

    def _prepare_backends(self, install: TritonInstall) -> Path:
        self._workdir = tempfile.TemporaryDirectory(prefix="tritonrec-triton-")
        return prepare_backends(install, Path(self._workdir.name) / "backends")

    def start(self) -> LocalTriton:
        """Start the server and wait until it and its models are ready.

        Raises:
            ServerError: the repository or binary is missing, a port is taken, the server exited, or it (or a
                model) was not ready within ``startup_timeout_s``; the message carries the log's last lines.
        """
        if self._process is not None:
            raise ServerError("this LocalTriton is already running")
        if not self.repository.is_dir():
            raise ServerError(f"model repository {self.repository} does not exist")
        for port, name in ((self.grpc_port, "grpc"), (self.http_port, "http"), (self.metrics_port, "metrics")):
            _check_port_free(port, name)
        install = find_tritonserver()
        cmd = self.command(install, self._prepare_backends(install))
        env = {**os.environ, **server_environment(install)}
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = self.log_file.open("wb")
        logger.info("starting %s", " ".join(cmd))
        self._process = subprocess.Popen(  # noqa: S603 - our own argument list
            cmd, stdout=self._log_handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        urls = [f"{self.http_url}/v2/health/ready"]
        urls += [f"{self.http_url}/v2/models/{name}/ready" for name in self.served_models]
        while time.monotonic() < deadline:
            code = self._process.poll() if self._process is not None else None
            if code is not None:
                raise ServerError(f"tritonserver exited with code {code} while starting{self._log_excerpt()}")
            if all(_http_ok(url) for url in urls):
                logger.info("tritonserver ready: grpc %s, http %s", self.grpc_url, self.http_url)
                return
            time.sleep(_POLL_SECONDS)
        raise ServerError(f"tritonserver was not ready after {self.startup_timeout_s:g} s{self._log_excerpt()}")

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server log ('' when the log streams to the terminal)."""
        if self.log_file is None or not self.log_file.is_file():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _log_excerpt(self) -> str:
        tail = self.log_tail(_LOG_TAIL_LINES)
        if not tail:
            return " (see the server log above)"
        errors = [line for line in tail.splitlines() if line.startswith("E") or "error" in line.lower()]
        return f"; errors in {self.log_file}:\n" + "\n".join(errors[-10:] or tail.splitlines()[-10:])

    def is_running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def wait(self) -> int:
        """Block until the server exits; return its exit code."""
        if self._process is None:
            raise ServerError("the server is not running")
        return self._process.wait()

    def kill(self) -> int | None:
        """SIGKILL the server and its Python stubs at once (a crash, ``kill -9``); ``start()`` brings it back.

        A killed server cannot remove the shared-memory regions its Python stubs used
        (``/dev/shm/triton_python_backend_shm_region_*``); they are removed here, as a supervisor would, so
        repeated crashes do not fill ``/dev/shm``.
        """
        regions = self._stub_regions()
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
        code = self.stop()
        for region in regions:
            with contextlib.suppress(OSError):
                (Path("/dev/shm") / region).unlink()
        return code

    def _stub_regions(self) -> list[str]:
        regions = []
        for pid in self.stub_pids():
            with contextlib.suppress(OSError, IndexError):
                argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
                if argv[2].startswith(b"triton_python_backend_shm_region_"):
                    regions.append(argv[2].decode())
        return regions

    def stub_pids(self, model: str | None = None) -> list[int]:
        """Process ids of the Python-backend stubs (one per model instance; only ``model``'s when given)."""
        if self._process is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                if parent != self._process.pid or "triton_python_b" not in stat:
                    continue
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if model is None or Path(argv[1].decode()).parent.parent.name == model:  # <repo>/<model>/<v>/model.py
                    pids.append(int(entry.name))
        return sorted(pids)

    def stop(self) -> int | None:
        """Stop the server: SIGTERM, then SIGKILL of its whole process group after a grace period.

        Python backend stubs run in the server's process group, so none is left behind. Returns the exit code
        (that of the last run when already stopped; None if never started). Safe to call twice.
        """
        process, self._process = self._process, None
        code: int | None = self.returncode
        if process is not None:
            code = None
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    code = process.wait(timeout=_STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    logger.warning("tritonserver ignored SIGTERM for %gs; killing it", _STOP_GRACE_SECONDS)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            code = process.wait() if code is None else code
            self.returncode = code
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        return code

    def __enter__(self) -> LocalTriton:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
