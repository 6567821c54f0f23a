"""The device scorer: the ranker on a chosen device and precision, scored like every other artifact. CPU here; the
CUDA cases run where a GPU is (marked gpu, skipped elsewhere)."""

import numpy as np
import pytest
import torch

from tritonrec.data.splits import FeatureBatch
from tritonrec.errors import ConfigError
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.scorers.eager import torch_scorer
from tritonrec.scorers.torch_device import CastMode, DeviceSettings, Execution, Precision, device_scorer, place_model

pytestmark = pytest.mark.unit

NO_CUDA = "needs a CUDA GPU (bench/gpu/run.sh runs the GPU path on a GPU machine)"


@pytest.fixture(scope="module")
def model(tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    torch.manual_seed(0)
    return RankingModel(spec, preset("base"), catalogue).eval()


@pytest.fixture(scope="module")
def batch(model):
    rng = np.random.default_rng(1)
    n_items, length = model.spec.n_items, model.spec.history_len
    histories = rng.integers(-3, n_items + 50, (24, length))
    histories[:4] = 0  # new users: empty histories
    return FeatureBatch(histories, rng.integers(-3, n_items + 50, (24, 37)))


def test_settings_take_strings_and_refuse_what_cannot_run():
    settings = DeviceSettings(device="cpu", precision="bf16", cast="autocast")
    assert settings.precision is Precision.BF16 and settings.cast is CastMode.AUTOCAST
    assert settings.label == "bf16 autocast eager"
    assert DeviceSettings(device="cpu").label == "fp32 eager"
    with pytest.raises(ConfigError, match="precision must be one of"):
        DeviceSettings(device="cpu", precision="fp8")
    with pytest.raises(ConfigError, match="device must be cpu, cuda or cuda:K"):
        DeviceSettings(device="tpu")
    with pytest.raises(ConfigError, match="cuda_graph needs a CUDA device"):
        DeviceSettings(device="cpu", execution=Execution.CUDA_GRAPH)


def test_fp32_on_the_cpu_scores_exactly_like_the_eager_scorer(model, batch):
    expected = torch_scorer(model)(batch)
    got = device_scorer(model, DeviceSettings(device="cpu"))(batch)
    assert got.dtype == np.float32 and got.shape == batch.candidates.shape
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("precision, atol", [("bf16", 0.05), ("fp16", 0.01)])
@pytest.mark.parametrize("cast", ["weights", "autocast"])
def test_lower_precisions_on_the_cpu_stay_close_to_fp32(model, batch, precision, atol, cast):
    fp32 = torch_scorer(model)(batch)
    low = device_scorer(model, DeviceSettings(device="cpu", precision=precision, cast=cast))(batch)
    assert np.isfinite(low).all()
    assert 0 < np.abs(low - fp32).max() < atol  # really another precision, and close


def test_placing_a_model_leaves_the_callers_model_alone(model):
    placed = place_model(model, DeviceSettings(device="cpu", precision="fp16"))
    assert placed.mlp.net[0].weight.dtype == torch.float16
    assert placed.items.attributes.dtype == torch.int64  # id tables are not cast
    assert model.mlp.net[0].weight.dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
@pytest.mark.parametrize("execution", ["eager", "cuda_graph"])
@pytest.mark.parametrize("precision, atol", [("fp32", 1e-3), ("bf16", 0.05), ("fp16", 0.01)])
def test_cuda_scores_match_cpu_fp32(model, batch, execution, precision, atol):
    fp32 = torch_scorer(model)(batch)
    scorer = device_scorer(model, DeviceSettings(device="cuda", precision=precision, execution=execution))
    for rows in (slice(0, 24), slice(0, 5), slice(3, 20)):  # graphs: bucketed shapes, stale rows in buffers
        part = FeatureBatch(batch.histories[rows], batch.candidates[rows])
        np.testing.assert_allclose(scorer(part), fp32[rows], atol=atol, rtol=0)
