"""Integration fixtures: one briefly trained Beauty model, exported once, shared by the serving and client tests."""

import contextlib
import io
import os

import pytest

from tritonrec.cli import main
from tritonrec.data.registry import prepare_dataset
from tritonrec.export.checkpoint_export import export_checkpoint
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.quantize.modelopt_ptq import find_modelopt_python
from tritonrec.train.checkpoint import load_checkpoint, save_checkpoint
from tritonrec.train.loop import TrainConfig, train_model


@pytest.fixture(scope="session")
def data(beauty_slice_dir):
    return prepare_dataset("beauty", beauty_slice_dir)


@pytest.fixture(scope="session")
def checkpoint_path(data, tmp_path_factory):
    model = RankingModel(data.spec, preset("small"), data.catalogue)
    train_model(model, data.train, data.valid, TrainConfig(max_epochs=1, max_minutes=0.5), progress=False)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt"), model)


@pytest.fixture(scope="session")
def export_dir(data, checkpoint_path, tmp_path_factory):
    checkpoint = load_checkpoint(checkpoint_path)
    out = tmp_path_factory.mktemp("export")
    # Weights as ONNX external data (what a model past 2 GB gets): the repository must carry model.onnx.data too.
    export_checkpoint(checkpoint, data.test, out, fp16=False, parity_rows=64, external_data=True)
    assert (out / "model.onnx.data").is_file() and (out / "model_ragged.onnx.data").is_file()
    return out


@pytest.fixture(scope="session")
def perf_analyzer():
    """The real perf_analyzer (`make tools-perf-analyzer`); missing fails on CI, skips elsewhere."""
    from tritonrec.measure.perf_analyzer import find_perf_analyzer

    found = find_perf_analyzer()
    if found is None:
        message = "perf_analyzer not installed: run `make tools-perf-analyzer` (bench/tools/install_perf_analyzer.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def quantized(export_dir, beauty_slice_dir, tmp_path_factory):
    """`tritonrec quantize` run once, shortened: (its folder, what it printed)."""
    out = tmp_path_factory.mktemp("quantize")
    if find_modelopt_python() is None and os.environ.get("CI"):
        pytest.fail("ModelOpt not installed: run `make tools-modelopt` (export/tools/install_modelopt.sh)")
    calibrators = "minmax" + (",modelopt-max" if find_modelopt_python() else "")
    args = [
        "quantize", "--export", str(export_dir), "--dataset", "beauty", "--data-dir", str(beauty_slice_dir),
        "--out", str(out), "--calibrators", calibrators, "--calibration-users", "64", "--eval-users", "64",
        "--batches", "1,256", "--candidates", "10", "--repeats", "1", "--no-serve", "--json",
    ]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="session")
def quantized_export(quantized):
    """The export folder `tritonrec quantize` wrote (model_qdq.onnx, export.json, ...)."""
    return quantized[0]
