"""Model Navigator as a peer: the worker's record read into typed results, the runner's failure paths, the pick
scored with our metrics. The fixtures under fixtures/navigator/ are copied (trimmed) from real runs of
`nav.torch.optimize` 0.14.0 on the beauty-small checkpoint on a 2-core CPU; kept on purpose, small."""

import json
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tritonrec.errors import ConfigError
from tritonrec.select.navigator import (
    INSTALL_HINT,
    NavigatorResult,
    NavigatorSettings,
    Pick,
    navigator_quality,
    parse_record,
    run_navigator,
    worker_command,
)
from tritonrec.select.navigator import _autocast as navigator_autocast
from tritonrec.select.navigator_record import load_result

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent / "fixtures" / "navigator"


def _record(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_stock_run_on_cpu_reads_every_format_failure_and_no_pick():
    result = parse_record(_record("navigator-stock.json"))
    assert result.ran and result.failure is None
    assert result.navigator_version == "0.14.0"
    assert not result.cpu_sync_shim
    statuses = {f.key: f.status for f in result.formats}
    assert statuses == {
        "torchscript-script": "FAIL",
        "torchscript-trace": "FAIL",
        "onnx": "FAIL",
        "torch-exportedprogram": "FAIL",
        "torch": "FAIL",
    }
    errors = {f.key: " | ".join(f.errors) for f in result.formats}
    assert "Torch not compiled with CUDA enabled" in errors["torchscript-trace"]
    assert "Unable to get stable performance results" in errors["onnx"]
    assert "_allow_complex_guards_as_runtime_asserts" in errors["torch-exportedprogram"]
    assert "Unknown type annotation" in errors["torchscript-script"]
    onnx = next(f for f in result.formats if f.key == "onnx")
    assert onnx.commands == {"ExportTorch2ONNX": "OK", "GraphSurgeonOptimize": "OK"}
    assert onnx.runners[0].commands["Correctness"] == "OK" and not onnx.runners[0].profiled
    assert onnx.runners[0].tolerance_atol == pytest.approx(0.014344930648803711)
    assert len(result.picks) == 8 and not any(p.found for p in result.picks)
    assert result.picked is None and result.picked_artifact is None


def test_profiled_run_reads_navigators_figures_and_its_pick():
    result = parse_record(_record("navigator-profiled.json"), record_path=Path("/runs/x/navigator.json"))
    assert result.ran and result.failure is None
    onnx = next(f for f in result.formats if f.key == "onnx")
    runner = onnx.runners[0]
    assert runner.runner == "OnnxCPU" and runner.profiled
    # 64 was measured and dropped by Navigator: it kept only batch sizes that raised throughput by its 5% cutoff.
    assert result.profile["batch_sizes"] == [1, 16, 64] and [p.batch_size for p in runner.profile] == [1, 16]
    assert all(p.throughput_per_second > 0 and p.p50_latency_ms > 0 for p in runner.profile)
    assert runner.peak is not None
    assert runner.peak.throughput_per_second == max(p.throughput_per_second for p in runner.profile)
    picked = result.picked
    assert picked is not None and picked.found and not picked.include_source
    assert picked == result.pick("default", include_source=False)
    assert (picked.format, picked.runner) == (_expected_pick()["format"], _expected_pick()["runner"])
    assert picked.throughput_per_second == pytest.approx(_expected_pick()["throughput_per_second"])
    assert result.picked_artifact == Path(_record("navigator-profiled.json")["picked"]["artifact"])
    assert result.out_dir == Path("/runs/x")


def _expected_pick() -> dict:
    record = _record("navigator-profiled.json")
    return next(p for p in record["picks"] if p["strategy"] == "default" and not p["include_source"])


def test_record_of_another_schema_or_garbled_is_refused():
    record = _record("navigator-stock.json")
    with pytest.raises(ConfigError, match="schema_version"):
        parse_record({**record, "schema_version": 99})
    with pytest.raises(ConfigError, match="malformed"):
        parse_record({**record, "models": [{"format": "onnx"}]})


def test_load_result_reads_a_run_folder(tmp_path):
    (tmp_path / "navigator.json").write_text((FIXTURES / "navigator-profiled.json").read_text())
    result = load_result(tmp_path)
    assert result.record_path == tmp_path / "navigator.json" and result.picked is not None
    assert json.loads(json.dumps(result.to_dict()))["picked"]["format"] == result.picked.format
    with pytest.raises(ConfigError, match="no readable"):
        load_result(tmp_path / "missing")


def test_settings_reach_the_worker_parser_unchanged():
    from tritonrec.select.navigator_worker import _parser

    settings = NavigatorSettings(formats=("onnx",), batch_sizes=(2, 8), stability_percentage=40, cpu_sync_shim=True)
    cmd = worker_command(Path("py"), Path("ckpt"), dataset="beauty", out_dir=Path("out"), settings=settings)
    args = _parser().parse_args(cmd[3:])
    assert args.formats == "onnx" and args.batch_sizes == "2,8" and args.stability_percentage == 40.0
    assert args.checkpoint == Path("ckpt") and args.out == Path("out") and args.dataset == "beauty"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"formats": ()},
        {"batch_sizes": (0, 4)},
        {"min_trials": 2, "stabilization_windows": 3},
        {"min_trials": 5, "max_trials": 4},
        {"stability_percentage": 0},
    ],
)
def test_settings_refuse_what_navigator_would_reject(kwargs):
    with pytest.raises(ConfigError):
        NavigatorSettings(**kwargs)


def test_missing_navigator_venv_is_an_install_failure_not_an_exception(tmp_path):
    result = run_navigator(
        Path("ckpt"), dataset="beauty", out_dir=tmp_path / "run", python=tmp_path / "no-venv" / "bin" / "python"
    )
    assert not result.ran and result.failure is not None
    assert result.failure.step == "install" and result.failure.exit_code is None
    assert INSTALL_HINT in result.failure.error


def _fake_python(tmp_path: Path, body: str) -> Path:
    """A stand-in for the venv's python: a script that ignores its arguments but finds --out in them."""
    script = tmp_path / "fake-python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys, time\n"
        "out = pathlib.Path(next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--out=')))\n"
        "out.mkdir(parents=True, exist_ok=True)\n" + body
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_worker_dying_without_a_record_reports_exit_code_and_log_tail(tmp_path):
    python = _fake_python(tmp_path, "print('ImportError: libfoo.so: cannot open shared object file')\nsys.exit(3)\n")
    result = run_navigator(Path("ckpt"), dataset="beauty", out_dir=tmp_path / "run", python=python)
    assert result.failure is not None and not result.ran
    assert (result.failure.step, result.failure.exit_code) == ("worker", 3)
    assert result.failure.error.startswith("ImportError: libfoo.so")
    assert "libfoo.so" in result.failure.log_tail and result.failure.command[0] == str(python)


def test_worker_failure_names_the_step_it_recorded(tmp_path):
    record = _record("navigator-stock.json")
    record.update(
        failure={"step": "optimize", "error": "ModelNavigatorUserInputError: boom", "traceback_tail": ["x\n"]},
        models=[],
        picks=[],
    )
    body = f"(out / 'navigator.json').write_text({json.dumps(json.dumps(record))})\nsys.exit(2)\n"
    python = _fake_python(tmp_path, body)
    result = run_navigator(Path("ckpt"), dataset="beauty", out_dir=tmp_path / "run", python=python)
    assert result.failure is not None and not result.ran
    assert (result.failure.step, result.failure.exit_code) == ("optimize", 2)
    assert result.failure.error == "ModelNavigatorUserInputError: boom"
    assert result.navigator_version == "0.14.0"


def test_worker_past_its_time_limit_is_stopped_and_the_running_step_named(tmp_path):
    record = {**_record("navigator-stock.json"), "running_step": "optimize"}
    body = (
        f"(out / 'navigator.json').write_text({json.dumps(json.dumps(record))})\n"
        "print('profiling...', flush=True)\ntime.sleep(60)\n"
    )
    result = run_navigator(
        Path("ckpt"), dataset="beauty", out_dir=tmp_path / "run", python=_fake_python(tmp_path, body), timeout_s=3
    )
    assert result.failure is not None and not result.ran
    assert result.failure.step == "timeout" and result.failure.exit_code is None
    assert "'optimize'" in result.failure.error and "profiling..." in result.failure.log_tail


def test_navigator_autocast_setting_is_mirrored():
    assert navigator_autocast({"autocast": True, "autocast_dtype": None}) == (True, None, "bfloat16")
    assert navigator_autocast({"autocast": True, "autocast_dtype": "torch.float16"}) == (True, "float16", "float16")
    assert navigator_autocast({"autocast": False}) == (False, None, None)


def test_quality_of_a_run_without_a_pick_is_refused(tmp_path):
    result = parse_record(_record("navigator-stock.json"))
    with pytest.raises(ConfigError, match="picked no artifact"):
        navigator_quality(result, data=None)  # type: ignore[arg-type]


def test_navigators_torchscript_pick_scores_like_the_model_with_our_metrics(tmp_path, beauty_slice_dir):
    import torch

    from tritonrec.data.registry import prepare_dataset
    from tritonrec.metrics import evaluate
    from tritonrec.model.config import preset
    from tritonrec.model.ranker import RankingModel
    from tritonrec.scorers.eager import torch_scorer

    data = prepare_dataset("beauty", beauty_slice_dir)
    torch.manual_seed(0)
    model = RankingModel(data.spec, preset("small"), data.catalogue).eval()
    example = (torch.from_numpy(data.test.histories[:4]), torch.from_numpy(data.test.candidates[:4]))
    path = tmp_path / "model.pt"
    torch.jit.trace(model, example).save(str(path))
    pick = Pick(
        strategy="default",
        include_source=False,
        model_key="torchscript-trace",
        format="torchscript",
        runner="TorchScriptCPU",
        throughput_per_second=1.0,
        latency_ms=1.0,
    )
    base = NavigatorResult(ran=True, failure=None, picks=(pick,), picked=pick, picked_artifact=path)
    fp32 = navigator_quality(replace(base, picked_runner_config={"autocast": False}), data, limit=300)
    reference = evaluate(torch_scorer(model), data.test.head(300))
    assert fp32.runtime == "torchscript" and fp32.autocast is None
    assert fp32.metrics["ndcg@10"] == pytest.approx(reference["ndcg@10"], abs=1e-6)
    assert fp32.metrics["auc"] == pytest.approx(reference["auc"], abs=1e-6)
    bf16 = navigator_quality(replace(base, picked_runner_config={"autocast": True}), data, limit=300)
    assert bf16.autocast == "bfloat16"
    assert bf16.metrics["logloss"] != fp32.metrics["logloss"]  # Navigator's CPU default really computes in bf16
    assert bf16.metrics["auc"] == pytest.approx(fp32.metrics["auc"], abs=0.05)


def test_worker_attributes_each_logged_exception_to_its_format(tmp_path):
    from tritonrec.select.navigator_worker import _errors_by_key

    (tmp_path / "navigator.log").write_text((FIXTURES / "navigator-log-excerpt.log").read_text())
    errors = _errors_by_key(tmp_path)
    assert set(errors) == {"torchscript-trace", "onnx"}  # the ONNX Correctness section logged no error
    assert errors["torchscript-trace"][0] == (
        "Performance torchscriptcpurunner: AssertionError: Torch not compiled with CUDA enabled"
    )
    assert errors["onnx"][0].startswith("Performance onnxrtcpurunner: RuntimeError: Unable to get stable performance")
    assert errors["onnx"][-1].endswith("ModelNavigatorProfilingError: No profiling results found.")


def test_navigator_modules_import_neither_torch_nor_navigator():
    code = (
        "import sys, tritonrec.select.navigator, tritonrec.select.navigator_worker, tritonrec.select.navigator_record\n"
        "print(sorted(m for m in ('torch', 'onnxruntime', 'model_navigator') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_peer_without_navigator_reports_the_install_step_and_picks_nothing(tmp_path, beauty_slice_dir):
    from tritonrec.data.registry import prepare_dataset
    from tritonrec.select.peers import NavigatorPeer
    from tritonrec.select.selection import Constraints

    peer = NavigatorPeer(
        checkpoint=tmp_path / "ckpt",
        data=prepare_dataset("beauty", beauty_slice_dir),
        dataset="beauty",
        data_dir=beauty_slice_dir,
        out_dir=tmp_path / "navigator",
        constraints=Constraints(p99_ms=50),
        python=tmp_path / "no-venv" / "bin" / "python",
    )
    entry = peer([], "base/triton/fp32", {"auc": 0.8, "ndcg@10": 0.3})
    assert entry["failure"]["step"] == "install" and INSTALL_HINT in entry["failure"]["error"]
    assert entry["picked"] is None and entry["summary"].startswith("picked nothing: model-navigator not installed")


@pytest.mark.parametrize(("auc", "ndcg", "within"), [(0.7995, 0.2990, True), (0.7990, 0.2990, False)])
def test_peer_pick_is_held_to_the_same_quality_budget_as_ours(auc, ndcg, within):
    from tritonrec.select.peers import _summary
    from tritonrec.select.selection import Constraints

    entry = {
        "picked": {"format": "onnx", "runner": "OnnxCPU", "rows_per_second": 100.0, "candidates_per_row": 100},
        "quality": {"autocast": None},
    }
    text = _summary(entry, {"auc": auc, "ndcg@10": ndcg}, {"auc": 0.8, "ndcg@10": 0.3}, Constraints(p99_ms=50), "x")
    assert entry["meets_quality"] is within
    assert entry["delta"]["auc"] == pytest.approx(auc - 0.8)
    assert ("within the allowed loss" in text) is within and ("OUTSIDE" in text) is not within
    assert "10,000 candidates/s" in text and "tritonrec's pick: x." in text


# -- a team's model: Navigator on a spec's module ---------------------------------------------------------------


@pytest.fixture
def bag_spec(tmp_path):
    """The bag ranker of test_spec.py (rows layout, a variable-length input) and its evaluation rows."""
    from test_spec import SPEC_TOML, write_rows

    from tritonrec.pipeline.spec_steps import spec_rows
    from tritonrec.spec import load_spec

    write_rows(tmp_path / "rows.parquet")
    (tmp_path / "spec.toml").write_text(SPEC_TOML.format(factory="make_bag_ranker", here=Path(__file__).parent))
    spec = load_spec(tmp_path / "spec.toml")
    return spec, spec_rows(spec)


def test_a_specs_samples_vary_in_rows_and_navigator_profiles_one_row(bag_spec, tmp_path):
    import numpy as np
    import torch

    from tritonrec.select.navigator import profiled_candidates, write_spec_samples
    from tritonrec.select.navigator_worker import SpecSamples, _dataloader, _profiling_sample, _verify_func
    from tritonrec.spec.module import load_module

    spec, rows = bag_spec
    settings = NavigatorSettings(samples=4, sample_batch_sizes=(1, 3))
    path = write_spec_samples(tmp_path / "samples.npz", rows, settings)
    sizes = [stop - start for start, stop in rows.queries()]
    read = SpecSamples(spec, path)
    samples, shapes = _dataloader(read, None)
    assert [s[0].shape[0] for s in samples] == [sizes[0], sum(sizes[1:4]), sizes[4], sum(sizes[5:8]), sizes[0]]
    assert list(shapes[0]) == ["title", "price"]
    # the last sample is the first with its title one token longer (padding): Navigator exports that dim dynamic
    assert samples[4][0].shape[1] == samples[0][0].shape[1] + 1 and not samples[4][0][:, -1].any()
    module = load_module(spec).eval()
    with torch.inference_mode():
        assert torch.allclose(module(*samples[4]), module(*samples[0]), atol=1e-6)
    assert torch.equal(samples[0][1], torch.from_numpy(rows.batch(0, sizes[0])["price"]))
    (profile,) = _profiling_sample(read, None)
    assert profile[0].shape[0] == 1 == profiled_candidates(rows, settings)  # a row is one candidate
    verify = _verify_func(module, samples, 1e-4, 1e-3, "score")
    with torch.inference_mode():
        outputs = [{"score": module(*s).numpy()} for s in samples]
    assert verify(outputs, None)
    outputs[2]["score"] = outputs[2]["score"] + np.float32(0.01)
    assert not verify(outputs, None)


def test_a_query_layout_spec_is_profiled_on_its_first_query_cut_to_profile_candidates(tmp_path):
    from test_spec_query_layout import QUERY_SPEC_TOML, write_query_rows

    from tritonrec.pipeline.spec_steps import spec_rows
    from tritonrec.select.navigator import profiled_candidates, write_spec_samples
    from tritonrec.select.navigator_worker import SpecSamples
    from tritonrec.spec import load_spec

    write_query_rows(tmp_path / "rows.parquet")
    (tmp_path / "spec.toml").write_text(
        QUERY_SPEC_TOML.format(factory="make_history_ranker", here=Path(__file__).parent)
    )
    spec = load_spec(tmp_path / "spec.toml")
    rows = spec_rows(spec)
    settings = NavigatorSettings(samples=2, sample_batch_sizes=(2,), profile_candidates=3)
    read = SpecSamples(spec, write_spec_samples(tmp_path / "samples.npz", rows, settings))
    n = profiled_candidates(rows, settings)
    first = next(iter(rows.queries()))
    assert n == min(first[1] - first[0], 3)
    items = [i.name for i in spec.inputs if i.name in rows.features]
    for name, tensor in zip(read.names, read.profile[0], strict=True):
        assert tensor.shape[0] == 1 and (tensor.shape[1] == n if name in items else True)
    assert [s[0].shape[0] for s in read.samples] == [2, 2, 2]  # two queries per sample, the first again one longer


def test_navigators_pick_of_a_spec_scores_like_its_module_with_our_metrics(bag_spec, tmp_path):
    import torch

    from tritonrec.metrics import score_rows, spec_quality
    from tritonrec.scorers.rows import module_rows_scorer
    from tritonrec.select.navigator import spec_navigator_quality
    from tritonrec.spec.module import load_module

    spec, rows = bag_spec
    module = load_module(spec).eval()
    path = tmp_path / "model.pt"
    example = rows.batch(0, 20)
    torch.jit.trace(module, (torch.from_numpy(example["title"]), torch.from_numpy(example["price"]))).save(str(path))
    pick = Pick(strategy="default", include_source=False, model_key="torchscript-trace", format="torchscript",
                runner="TorchScriptCPU", throughput_per_second=1.0, latency_ms=1.0)  # fmt: skip
    result = NavigatorResult(ran=True, failure=None, picks=(pick,), picked=pick, picked_artifact=path)
    scored = spec_navigator_quality(replace(result, picked_runner_config={"autocast": False}), spec, rows)
    eager = spec_quality(spec, score_rows(module_rows_scorer(module, spec), rows), rows)
    assert scored.runtime == "torchscript" and scored.split == "evaluation"
    assert scored.metrics == pytest.approx(eager, abs=1e-6)
    with pytest.raises(ConfigError, match="picked no artifact"):
        spec_navigator_quality(replace(result, picked=None, picked_artifact=None), spec, rows)


def test_the_worker_wants_a_checkpoint_or_a_spec_with_its_samples(tmp_path, capsys):
    from tritonrec.select.navigator_worker import main as worker

    for argv in (["--out", str(tmp_path)], ["--spec", "s.toml", "--out", str(tmp_path)],
                 ["--spec", "s.toml", "--checkpoint", "c", "--dataset", "beauty", "--out", str(tmp_path)]):  # fmt: skip
        with pytest.raises(SystemExit) as stopped:
            worker(argv)
        assert stopped.value.code == 2
    assert "--samples-file" in capsys.readouterr().err


def test_spec_peer_without_navigator_reports_the_install_step(bag_spec, tmp_path):
    from tritonrec.select.peers import SpecNavigatorPeer
    from tritonrec.select.selection import Constraints

    spec, rows = bag_spec
    peer = SpecNavigatorPeer(spec=spec, rows=rows, out_dir=tmp_path / "navigator", constraints=Constraints(p99_ms=50),
                             python=tmp_path / "no-venv" / "bin" / "python")  # fmt: skip
    entry = peer([], "base/triton/fp32", {"auc": 0.8, "ndcg@10": 0.3})
    assert entry["failure"]["step"] == "install" and entry["picked"] is None
    assert (tmp_path / "navigator" / "samples.npz").is_file()  # written before the worker would start
