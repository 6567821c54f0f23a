"""Structured pruning: channels physically removed, the criterion finds dead channels, exports keep parity."""

import numpy as np
import pytest
import torch

from tritonrec.compress.options import QuantizeOptions
from tritonrec.compress.prune import channel_importance, prune_model
from tritonrec.compress.quantize import quantize_embeddings
from tritonrec.compress.share import share_item_table
from tritonrec.data.splits import EvalSet, FeatureBatch
from tritonrec.export.checkpoint_export import export_checkpoint
from tritonrec.model.config import TableSharing, preset
from tritonrec.model.ranker import RankingModel
from tritonrec.train.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.unit


def _batches(n=4):
    rng = np.random.default_rng(0)
    return [
        FeatureBatch(rng.integers(0, 301, (32, 12)).astype(np.int64), rng.integers(1, 301, (32, 8)).astype(np.int64))
        for _ in range(n)
    ]


def _rows(n=64):
    rng = np.random.default_rng(1)
    labels = np.zeros((n, 10), dtype=np.float32)
    labels[:, 0] = 1
    return EvalSet(rng.integers(0, 301, (n, 12)), rng.integers(1, 301, (n, 10)), labels)


@pytest.fixture(scope="module")
def model_with_dead_channels(tiny_spec_and_catalogue):
    """A base model where every odd channel of every prunable group contributes nothing downstream."""
    spec, catalogue = tiny_spec_and_catalogue
    torch.manual_seed(0)
    model = RankingModel(spec, preset("base"), catalogue).eval()
    with torch.no_grad():
        model.mlp.net[2].weight[:, 1::2] = 0  # MLP hidden 0 (128) -> read by net[2]
        model.mlp.net[4].weight[:, 1::2] = 0  # MLP hidden 1 (64)
        for layer in model.cross.layers:
            layer[1].weight[:, 1::2] = 0  # rank channels read by ``up``
        model.history.ffn[0][2].weight[:, 1::2] = 0
        for attn in (model.history.attn[0], model.target_attention.attention):
            attn.out.weight[:, 1::2] = 0  # value channels
            attn.query.weight[1::2] = 0  # query channels: q_c = 0 contributes nothing to the logits
            attn.query.bias[1::2] = 0
    return model


def test_the_criterion_ranks_dead_channels_last(model_with_dead_channels):
    scores = channel_importance(model_with_dead_channels, _batches())
    assert len(scores) == 2 + 2 + 1 + 2 * 2  # MLP hidden, cross layers, feed-forward, 2 attention modules x (qk, v)
    for name, s in scores.items():
        assert (s[1::2] == 0).all(), name
        live = (s[0::2] > 0).float().mean()  # ReLU units that never fire at random init score 0 too
        assert live > (0.6 if name.startswith("mlp") else 0.99), name


def test_pruning_removes_dead_channels_physically_and_keeps_the_scores(model_with_dead_channels):
    parent = model_with_dead_channels
    pruned, details = prune_model(parent, _batches(), 0.5)
    assert pruned.config.mlp_hidden == (64, 32) and pruned.config.cross_ranks == (32, 32)
    assert pruned.config.ffn_hidden == (64,) and pruned.config.attention_qk_dim == 16
    assert pruned.mlp.net[0].weight.shape == (64, 320) and pruned.mlp.net[2].weight.shape == (32, 64)
    assert pruned.cross.layers[0][0].weight.shape == (32, 320) and pruned.cross.layers[0][1].weight.shape == (320, 32)
    assert pruned.history.ffn[0][0].weight.shape == (64, 64)
    attn = pruned.target_attention.attention
    assert (
        attn.query.weight.shape == (32, 64)
        and attn.value.weight.shape == (32, 64)
        and attn.out.weight.shape == (64, 32)
    )
    assert pruned.n_parameters() < parent.n_parameters()
    assert details["widths"]["mlp.net.0"] == [128, 64] and details["kept_share"] == pytest.approx(0.5)
    rows = _rows()
    h, c = torch.from_numpy(rows.histories), torch.from_numpy(rows.candidates)
    with torch.no_grad():
        torch.testing.assert_close(pruned(h, c), parent(h, c), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("variant", ["qr+int4", "hash+int8/16"])  # pruned + QR + INT4: tests/integration
def test_compressed_models_export_to_onnx_with_parity(model_with_dead_channels, variant, tmp_path):
    model = model_with_dead_channels
    if variant == "qr+int4":
        shared, _ = share_item_table(model, TableSharing.QR, 4)
        model, _ = quantize_embeddings(shared, QuantizeOptions(storage="int4"))
    else:
        shared, _ = share_item_table(model, TableSharing.HASH, 4)
        model, _ = quantize_embeddings(shared, QuantizeOptions(storage="int8", block=16))
    checkpoint = load_checkpoint(save_checkpoint(tmp_path / "ckpt", model))
    result = export_checkpoint(checkpoint, _rows(), tmp_path / "onnx", parity_rows=32)
    assert all(record.passed for record in result.parity)
    assert result.parity[0].max_abs < 1e-4
