"""Run Triton Model Navigator's ``nav.torch.optimize`` on a tritonrec checkpoint or a spec's module; write what it did.

This script runs in Model Navigator's OWN virtualenv (``bash bench/tools/install_model_navigator.sh``), started by
:func:`tritonrec.select.navigator.run_navigator` with tritonrec's source on ``PYTHONPATH``; nothing in the
project's environment imports it. Its steps, each named in the record when it fails:

1. ``load``: the checkpoint (:func:`tritonrec.train.checkpoint.load_checkpoint`) and the dataset's test users; or,
   with ``--spec``, the spec's module (:func:`tritonrec.spec.module.load_module`) and the samples the caller wrote
   from its evaluation rows (``--samples-file``; this venv reads no Parquet);
2. ``dataloader``: real samples in the shapes we serve (legend: B = users, L = history length, N = candidates per
   user): ``history`` int64 ``[B, L]`` and ``candidates`` int64 ``[B, N]``, B and N varying over the samples so
   Navigator exports both as dynamic axes; a spec's samples are its inputs in its order, B rows (or queries);
3. ``optimize``: ``nav.torch.optimize(model, dataloader, target_device=DeviceKind.CPU, ...)``: export, conversion,
   correctness against the source model, profiling, each in Navigator's own subprocesses;
4. ``select``: Navigator's own runtime strategies (``MaxThroughputAndMinLatencyStrategy``, ``MaxThroughputStrategy``,
   ``MinLatencyStrategy`` and the default chain of ``package.get_best_runtime``), over every format and over
   the serialized formats only (what a Triton repository can hold);
5. ``save``: the serialized pick copied out of Navigator's workspace, so tritonrec's metrics can score it.

The record (``navigator.json`` in ``--out``; schema in :mod:`tritonrec.select.navigator`) holds Navigator's own
statuses and profiling figures as Navigator reported them; on a failure it names the step and the error and the
script exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import re
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_VERSION", "main"]

SCHEMA_VERSION = 1
RECORD_FILE = "navigator.json"
CPU_FORMATS = ("torchscript", "torch-exportedprogram", "onnx")
CPU_RUNNERS = ("TorchCPU", "TorchScriptCPU", "TorchExportedProgramCPU", "OnnxCPU", "TorchCompileCPU")


class StepError(Exception):
    """A step of the worker failed; ``step`` names it in the record."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"{step}: {type(error).__name__}: {error}")
        self.step = step
        self.error = error


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--checkpoint", type=Path, default=None, help="tritonrec checkpoint directory")
    p.add_argument("--dataset", default=None, help="dataset the checkpoint was trained on (beauty, rees46, synthetic)")
    p.add_argument("--spec", type=Path, default=None, help="a model spec instead of a checkpoint (its module)")
    p.add_argument("--samples-file", type=Path, default=None, help="with --spec: the samples (.npz) to give Navigator")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset files (default: the bundled copy)")
    p.add_argument("--history-len", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="folder for navigator.json, the workspace and the pick")
    p.add_argument("--samples", type=int, default=8, help="dataloader samples (batches of test users)")
    p.add_argument("--sample-batch-sizes", default="1,8", help="users per dataloader sample, cycled")
    p.add_argument("--sample-candidates", default="100,50", help="candidates per user in the samples, cycled")
    p.add_argument("--formats", default=",".join(CPU_FORMATS), help="Navigator target formats")
    p.add_argument("--runners", default="", help="Navigator runners (default: its defaults for the CPU)")
    p.add_argument("--batch-sizes", default="1,16,64", help="batch sizes Navigator profiles (users per call)")
    p.add_argument("--window-size", type=int, default=25, help="requests per profiling window")
    p.add_argument("--stabilization-windows", type=int, default=3)
    p.add_argument("--min-trials", type=int, default=3)
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--stability-percentage", type=float, default=10.0)
    p.add_argument("--profile-candidates", type=int, default=100, help="candidates in the profiled user's row")
    p.add_argument("--verify-atol", type=float, default=1e-4, help="verify_func vs FP32 eager (0 = no verify_func)")
    p.add_argument("--verify-rtol", type=float, default=1e-3)
    return p


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


class SpecSamples:
    """A spec's module's samples, read from the caller's ``.npz``: its inputs in the spec's order, its output name."""

    def __init__(self, spec: Any, path: Path) -> None:
        import numpy as np
        import torch

        self.names = [i.name for i in spec.inputs]
        self.output = spec.output.name
        with np.load(path) as arrays:
            keys = list(arrays.keys())
            count = len({k.split("/", 1)[0] for k in keys if k.startswith("sample")})

            def sample(prefix: str) -> tuple[Any, ...]:
                return tuple(torch.from_numpy(np.ascontiguousarray(arrays[f"{prefix}/{n}"])) for n in self.names)

            self.samples = [sample(f"sample{k}") for k in range(count)]
            self.profile = [sample("profile")]


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    if args.spec is not None:
        from tritonrec.spec.model_spec import load_spec
        from tritonrec.spec.module import load_module

        spec = load_spec(args.spec)
        return load_module(spec).eval(), SpecSamples(spec, args.samples_file)
    from tritonrec.data.registry import prepare_dataset
    from tritonrec.train.checkpoint import load_checkpoint

    loaded = load_checkpoint(args.checkpoint)
    data = prepare_dataset(args.dataset, args.data_dir, history_len=args.history_len, seed=args.seed)
    data.check_fits(loaded.spec, args.checkpoint)
    return loaded.model.eval(), data


def _dataloader(data: Any, args: argparse.Namespace) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """``[(history [B, L], candidates [B, N]), ...]`` from consecutive test users; B and N cycle.

    A spec's samples are the caller's, each the spec's inputs in its order.
    """
    import torch

    if isinstance(data, SpecSamples):
        shapes = [{n: list(t.shape) for n, t in zip(data.names, s, strict=True)} for s in data.samples]
        return data.samples, shapes
    test = data.test
    users, widths = _ints(args.sample_batch_sizes), _ints(args.sample_candidates)
    samples, shapes, row = [], [], 0
    for i in range(args.samples):
        b, n = users[i % len(users)], min(widths[i % len(widths)], test.candidates.shape[1])
        if row + b > len(test):
            row = 0
        history = torch.from_numpy(test.histories[row : row + b].astype("int64"))
        candidates = torch.from_numpy(test.candidates[row : row + b, :n].astype("int64"))
        samples.append((history, candidates))
        shapes.append({"history": list(history.shape), "candidates": list(candidates.shape)})
        row += b
    return samples, shapes


def _profiling_sample(data: Any, args: argparse.Namespace) -> list[tuple[Any, ...]]:
    """The one sample Navigator profiles with: the first test user with ``--profile-candidates`` candidates.

    Navigator repeats its row to every profiled batch size (``OptimizationProfile.dataloader``). A spec's is the
    caller's: its first evaluation row (or query).
    """
    import torch

    if isinstance(data, SpecSamples):
        return data.profile
    n = min(args.profile_candidates, data.test.candidates.shape[1])
    history = torch.from_numpy(data.test.histories[:1].astype("int64"))
    return [(history, torch.from_numpy(data.test.candidates[:1, :n].astype("int64")))]


def _verify_func(
    model: Any, samples: list[tuple[Any, ...]], atol: float, rtol: float, output: str = "scores"
) -> Callable[..., bool]:
    """Navigator's ``verify_func``: each runner's scores against OUR FP32 eager scores on the same samples.

    Navigator's own reference is its source runner, which on the CPU autocasts to bfloat16 by default; this check
    holds every format to the FP32 model instead. Navigator calls it with one runner's outputs per sample (in
    dataloader order) and the source runner's; the second is not used.
    """
    import numpy as np
    import torch

    with torch.inference_mode():
        reference = [model(*sample).float().numpy() for sample in samples]

    def verify(predicted: Any, source: Any) -> bool:
        for got, want in zip(predicted, reference, strict=False):
            scores = np.asarray(got[output], dtype=np.float32)
            if scores.shape != want.shape or not np.allclose(scores, want, atol=atol, rtol=rtol):
                return False
        return True

    return verify


def _optimize(model: Any, samples: list[tuple[Any, ...]], data: Any, args: argparse.Namespace) -> Any:
    nav = importlib.import_module("model_navigator")

    profile = nav.OptimizationProfile(
        batch_sizes=_ints(args.batch_sizes),
        window_size=args.window_size,
        min_trials=args.min_trials,
        max_trials=args.max_trials,
        stability_percentage=args.stability_percentage,
        stabilization_windows=args.stabilization_windows,
        dataloader=_profiling_sample(data, args),
    )
    runners = tuple(_names(args.runners)) or None
    spec = isinstance(data, SpecSamples)
    inputs, output = (tuple(data.names), data.output) if spec else (("history", "candidates"), "scores")
    verify = _verify_func(model, samples, args.verify_atol, args.verify_rtol, output) if args.verify_atol > 0 else None
    return nav.torch.optimize(
        model=model,
        dataloader=samples,
        sample_count=len(samples),
        input_names=inputs,
        output_names=(output,),
        target_formats=tuple(_names(args.formats)),
        target_device=nav.DeviceKind.CPU,
        runners=runners,
        optimization_profile=profile,
        workspace=args.out / "workspace",
        verify_func=verify,
    )


def _value(v: Any) -> Any:
    """Enum members as their value, everything else as it is."""
    return getattr(v, "value", v)


def _profiling(runner_status: Any) -> list[dict[str, Any]]:
    perf = runner_status.result.get("Performance") or {}
    rows = []
    for r in perf.get("profiling_results") or []:
        rows.append(
            {
                "batch_size": r.batch_size,
                "throughput_per_second": r.throughput,
                "avg_latency_ms": r.avg_latency,
                "p50_latency_ms": r.p50_latency,
                "p90_latency_ms": r.p90_latency,
                "p95_latency_ms": r.p95_latency,
                "p99_latency_ms": r.p99_latency,
                "request_count": r.request_count,
            }
        )
    return rows


def _tolerance(runner_status: Any) -> dict[str, float] | None:
    """Navigator's measured tolerance of the output against its source runner (its Correctness command)."""
    tolerances = (runner_status.result.get("Correctness") or {}).get("per_output_tolerance")
    if not tolerances:
        return None
    # In memory a {output name: Tolerance} dict; read back from status.yaml a list of dicts.
    first = next(iter(tolerances.values())) if isinstance(tolerances, dict) else tolerances[0]
    if isinstance(first, dict):
        return {"atol": float(first["atol"]), "rtol": float(first["rtol"])}
    return {"atol": float(first.atol), "rtol": float(first.rtol)}


_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)\b:?.*$")


_SECTION = re.compile(r"Command '(\w+)' started")
_SCRIPT = re.compile(r"\s([\w.-]+)/reproduce_\w+?(?:-(\w+))?\.py\b")


def _exception_lines(lines: Sequence[str]) -> list[str]:
    seen: list[str] = []
    for line in lines:
        text = line.strip()[:500]
        if _ERROR_LINE.match(text) and text not in seen:
            seen.append(text)
    return seen


def _errors_by_key(workspace: Path, limit: int = 8) -> dict[str, list[str]]:
    """The exception lines of each model key, from Navigator's logs.

    ``navigator.log`` holds every command in sections (``Command 'Performance' started``); a section names its
    model key in the path of the script it runs (``onnx/reproduce_profiling-onnxrtcpurunner.py``). Failures in
    Navigator's isolated child processes are logged only there, not in ``<key>/format.log``.
    """
    try:
        lines = (workspace / "navigator.log").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    found: dict[str, list[str]] = {}
    sections: list[tuple[str, list[str]]] = []
    for line in lines:
        head = _SECTION.search(line)
        if head:
            sections.append((head.group(1), []))
        elif sections:
            sections[-1][1].append(line)
    for command, body in sections:
        script = next((m for m in map(_SCRIPT.search, body) if m), None)
        errors = _exception_lines(body)
        if script is None or not errors:
            continue
        runner = f" {script.group(2)}" if script.group(2) else ""
        found.setdefault(script.group(1), []).extend(f"{command}{runner}: {e}" for e in errors)
    for key, errors in found.items():
        found[key] = list(dict.fromkeys(errors))[:limit]
    return found


def _runner_config(model_config: Any) -> dict[str, Any]:
    config = getattr(model_config, "runner_config", None)
    if config is None:
        return {}
    return {k: _value(v) for k, v in config.to_dict(parse=True).items()}


def _models(package: Any) -> list[dict[str, Any]]:
    """Every model Navigator produced, its conversion statuses and its runners' statuses and figures."""
    out = []
    errors = _errors_by_key(package.workspace.path)
    for key, status in package.status.models_status.items():
        config = status.model_config
        commands = {name: _value(s) for name, s in status.status.items()}
        runners = [
            {
                "runner": rs.runner_name,
                "commands": {name: _value(s) for name, s in rs.status.items()},
                "tolerance": _tolerance(rs),
                "profiling": _profiling(rs),
            }
            for rs in status.runners_status.values()
        ]
        failed = any(v == "FAIL" for v in commands.values()) or any(
            v == "FAIL" for r in runners for v in r["commands"].values()
        )
        out.append(
            {
                "key": key,
                "format": _value(config.format),
                "path": str(config.path),
                "exists": (package.workspace.path / config.path).exists(),
                "commands": commands,
                "runner_config": _runner_config(config),
                "runners": runners,
                "log": str(package.workspace.path / key / "format.log"),
                "errors": errors.get(key, []) if failed else [],
            }
        )
    return out


def _pick(package: Any, strategies: Sequence[Any] | None, label: str, *, include_source: bool) -> dict[str, Any]:
    analyzer_error = importlib.import_module("model_navigator.exceptions").ModelNavigatorRuntimeAnalyzerError

    try:
        result = package.get_best_runtime(strategies=strategies, include_source=include_source)
    except analyzer_error as e:
        return {"strategy": label, "include_source": include_source, "found": False, "error": str(e)}
    config = result.model_status.model_config
    return {
        "strategy": label,
        "include_source": include_source,
        "found": True,
        "model_key": config.key,
        "format": _value(config.format),
        "runner": result.runner_status.runner_name,
        "path": str(config.path),
        "throughput_per_second": result.throughput,
        "latency_ms": result.latency,
    }


def _picks(package: Any) -> list[dict[str, Any]]:
    nav = importlib.import_module("model_navigator")

    named: list[tuple[str, Sequence[Any] | None]] = [
        ("default", None),  # DEFAULT_RUNTIME_STRATEGIES: MaxThroughputAndMinLatency, then MinLatency
        ("MaxThroughputAndMinLatencyStrategy", [nav.MaxThroughputAndMinLatencyStrategy()]),
        ("MaxThroughputStrategy", [nav.MaxThroughputStrategy()]),
        ("MinLatencyStrategy", [nav.MinLatencyStrategy()]),
    ]
    return [
        _pick(package, strategies, label, include_source=include_source)
        for include_source in (True, False)
        for label, strategies in named
    ]


def _save(package: Any, picks: list[dict[str, Any]], out: Path) -> dict[str, Any] | None:
    """Copy the default serialized pick (and its external data, if any) to ``out/picked``."""
    chosen = next((p for p in picks if p["strategy"] == "default" and not p["include_source"] and p["found"]), None)
    if chosen is None:
        return None
    source = package.workspace.path / chosen["path"]
    dest_dir = out / "picked"
    if dest_dir.exists():
        shutil.rmtree(dest_dir)
    dest_dir.mkdir(parents=True)
    copied = []
    for f in sorted(source.parent.iterdir()):
        if f.is_file() and (f == source or f.name.startswith(source.name + ".") or f.suffix == ".data"):
            shutil.copy2(f, dest_dir / f.name)
            copied.append(f.name)
    status = package.status.models_status[chosen["model_key"]]
    return {
        "model_key": chosen["model_key"],
        "format": chosen["format"],
        "runner": chosen["runner"],
        "artifact": str(dest_dir / source.name),
        "files": copied,
        "runner_config": _runner_config(status.model_config),
    }


def _versions() -> dict[str, str | None]:
    import importlib.metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("triton-model-navigator", "torch", "onnxruntime", "onnx", "polygraphy", "numpy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


class _Recorder:
    """The record and its file: rewritten when each step starts, so a crash or a timeout still names the step."""

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        self.path = path
        self.record = record

    def write(self) -> None:
        self.path.write_text(json.dumps(self.record, indent=2, sort_keys=True, default=str) + "\n")

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        self.record["running_step"] = name
        self.write()
        try:
            return fn()
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # Navigator raises many unrelated types; every one is a failure of this step
            raise StepError(name, e) from e


def _shim_loaded() -> bool:
    module = sys.modules.get("sitecustomize")
    return bool(module and str(getattr(module, "__file__", "")).endswith("navigator_shim/sitecustomize.py"))


def run(args: argparse.Namespace, rec: _Recorder) -> None:
    """The steps; each fills the record as it goes (so a failure keeps what came before)."""
    record = rec.record
    started = time.perf_counter()
    record["navigator_version"] = rec.step("import", lambda: importlib.import_module("model_navigator").__version__)
    model, data = rec.step("load", lambda: _load(args))
    samples, shapes = rec.step("dataloader", lambda: _dataloader(data, args))
    record["samples"] = shapes
    package = rec.step("optimize", lambda: _optimize(model, samples, data, args))
    record["optimize_s"] = round(time.perf_counter() - started, 1)
    record["workspace"] = str(package.workspace.path)
    record["status_file"] = str(package.workspace.path / package.status_filename)
    record["models"] = rec.step("collect", lambda: _models(package))
    record["picks"] = rec.step("select", lambda: _picks(package))
    record["picked"] = rec.step("save", lambda: _save(package, record["picks"], args.out))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the steps and write ``navigator.json``; 0 when every step ran, 2 when one failed."""
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.spec is None) == (args.checkpoint is None) or (args.spec is None and args.dataset is None):
        parser.error("give --checkpoint with --dataset, or --spec with --samples-file")
    if args.spec is not None and args.samples_file is None:
        parser.error("--spec needs --samples-file (tritonrec.select.navigator.write_spec_samples writes it)")
    args.out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "argv": list(argv if argv is not None else sys.argv[1:]),
        "versions": _versions(),
        "cpu_sync_shim": _shim_loaded(),
        "profile": {
            "target_device": "cpu",
            "formats": _names(args.formats),
            "runners": _names(args.runners),
            "batch_sizes": _ints(args.batch_sizes),
            "window_size": args.window_size,
            "stabilization_windows": args.stabilization_windows,
            "min_trials": args.min_trials,
            "max_trials": args.max_trials,
            "stability_percentage": args.stability_percentage,
            "profile_candidates": args.profile_candidates,
            "verify_atol": args.verify_atol,
            "verify_rtol": args.verify_rtol,
            "samples": args.samples,
        },
        "failure": None,
        "running_step": None,
    }
    rec = _Recorder(args.out / RECORD_FILE, record)
    code = 0
    try:
        run(args, rec)
    except StepError as e:
        record["failure"] = {
            "step": e.step,
            "error": f"{type(e.error).__name__}: {e.error}",
            "traceback_tail": traceback.format_exception(e.error)[-3:],
        }
        print(f"navigator worker: step {e.step} failed: {type(e.error).__name__}: {e.error}", file=sys.stderr)
        code = 2
    record["running_step"] = None
    rec.write()
    return code


if __name__ == "__main__":
    sys.exit(main())
