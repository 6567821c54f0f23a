"""Integration fixtures: one briefly trained Beauty model, exported once, shared by the serving and client tests."""

import os

import pytest

from tritonrec.data.registry import prepare_dataset
from tritonrec.export.checkpoint_export import export_checkpoint
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
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
