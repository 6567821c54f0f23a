import json

import pytest
import torch

from tritonrec.errors import CheckpointError, ConfigError
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.train.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from tritonrec.train.lineage import Lineage

pytestmark = pytest.mark.unit


@pytest.fixture
def saved(tmp_path, tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    model = RankingModel(spec, preset("small"), catalogue).eval()
    save_checkpoint(tmp_path / "ckpt", model, metrics={"test": {"ndcg@10": 0.5}}, dataset={"name": "tiny"})
    return tmp_path / "ckpt", model


def test_checkpoint_round_trip_restores_scores_spec_and_metrics(saved):
    directory, model = saved
    loaded = load_checkpoint(directory)
    h, c = torch.randint(0, 301, (3, 12)), torch.randint(1, 301, (3, 6))
    torch.testing.assert_close(loaded.model(h, c), model(h, c))
    assert loaded.spec == model.spec
    assert loaded.config == model.config
    assert loaded.metrics["test"]["ndcg@10"] == 0.5
    assert loaded.dataset["name"] == "tiny"
    # the catalogue travels inside the weights
    assert torch.equal(loaded.model.items.brand_table, model.items.brand_table)


def test_a_checkpoint_of_another_format_version_is_refused(saved):
    directory, _ = saved
    meta = json.loads((directory / "checkpoint.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (directory / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=f"format version {FORMAT_VERSION + 1}"):
        load_checkpoint(directory)


def test_missing_or_garbled_checkpoints_say_what_is_wrong(saved, tmp_path):
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "nowhere")
    directory, _ = saved
    (directory / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(directory)
    (directory / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(directory)


def test_a_format_1_checkpoint_without_compression_fields_or_lineage_still_loads(saved):
    directory, model = saved
    meta = json.loads((directory / "checkpoint.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION == 2 and "lineage" not in meta
    meta["format_version"] = 1
    written_by_format_1 = ("embedding_dim", "n_heads", "history_layers", "cross_layers", "cross_rank", "mlp_hidden",
                           "dropout", "ffn_mult")  # fmt: skip
    meta["model_config"] = {k: meta["model_config"][k] for k in written_by_format_1}
    (directory / "checkpoint.json").write_text(json.dumps(meta))
    old = load_checkpoint(directory)
    assert old.lineage is None and old.config == model.config
    h, c = torch.randint(0, 301, (2, 12)), torch.randint(1, 301, (2, 4))
    torch.testing.assert_close(old.model(h, c), model(h, c))


def test_lineage_is_saved_and_read_back_with_its_chain(saved, tmp_path):
    _, model = saved
    first = Lineage(parent="a", method="prune", arguments={"ratio": 0.5}, metrics_before={"auc": 0.8},
                    metrics_after={"auc": 0.79})  # fmt: skip
    second = Lineage(parent="b", method="quantize-embeddings", metrics_before={"auc": 0.79},
                     metrics_after={"auc": 0.7899}, details={"table_ratio": 3.8}, parent_lineage=first)  # fmt: skip
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c", model, lineage=second))
    assert loaded.lineage == second
    assert loaded.lineage.methods == ("prune", "quantize-embeddings") and loaded.lineage.root == "a"
    assert loaded.lineage.delta("auc") == pytest.approx(-0.0001)
    with pytest.raises(ConfigError, match="not recorded"):
        loaded.lineage.delta("ndcg@10")
    with pytest.raises(ConfigError, match="parent and method"):
        Lineage.from_dict({"parent": "x"})
