"""Short real training runs: the model must learn something a popularity ranking cannot."""

import json

import pytest

from tritonrec.cli import main
from tritonrec.data.registry import prepare_dataset
from tritonrec.data.synthetic import SyntheticConfig, generate_synthetic
from tritonrec.data.synthetic_io import save_synthetic
from tritonrec.metrics import evaluate, ranking_metrics
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.scorers.eager import torch_scorer
from tritonrec.scorers.popularity import popularity_scorer
from tritonrec.train.loop import Loss, TrainConfig, train_model

pytestmark = pytest.mark.integration


def test_short_training_on_a_beauty_slice_beats_popularity(beauty_slice_dir):
    data = prepare_dataset("beauty", beauty_slice_dir)
    model = RankingModel(data.spec, preset("small"), data.catalogue)
    # four epochs, whatever the machine's load: the budget is far above what they take on 2 idle cores (~40 s)
    config = TrainConfig(max_epochs=4, max_minutes=10.0)
    result = train_model(model, data.train, data.valid, config, progress=False)
    model_ndcg = evaluate(torch_scorer(model), data.test)["ndcg@10"]
    popularity_ndcg = evaluate(popularity_scorer(data.item_counts), data.test)["ndcg@10"]
    assert result.best_epoch >= 1
    assert model_ndcg > popularity_ndcg + 0.03, (model_ndcg, popularity_ndcg)


def test_synthetic_training_approaches_but_never_beats_the_ground_truth(tmp_path):
    save_synthetic(generate_synthetic(SyntheticConfig(n_items=2_000, n_users=6_000, seed=3)), tmp_path)
    data = prepare_dataset("synthetic", tmp_path, seed=3)
    assert data.oracle_test_scores is not None
    oracle = ranking_metrics(data.oracle_test_scores, data.test.labels)
    model = RankingModel(data.spec, preset("small"), data.catalogue)
    config = TrainConfig(loss=Loss.BCE, max_epochs=6, max_minutes=1.5)
    train_model(model, data.train, data.valid, config, progress=False)
    auc = evaluate(torch_scorer(model), data.test)["auc_global"]
    popularity_auc = evaluate(popularity_scorer(data.item_counts), data.test)["auc_global"]
    assert popularity_auc < auc < oracle["auc_global"] + 0.01, (popularity_auc, auc, oracle)


def test_train_then_evaluate_from_the_cli_report_the_same_test_metrics(beauty_slice_dir, tmp_path, capsys):
    out = tmp_path / "ckpt"
    args = ["--dataset", "beauty", "--data-dir", str(beauty_slice_dir)]
    assert main(["train", *args, "--preset", "small", "--out", str(out), "--epochs", "1", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--checkpoint", str(out), *args, "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert {"auc", "logloss", "hr@10", "ndcg@10", "mrr", "n_users"} <= set(evaluated)
    assert evaluated["n_users"] == trained["test"]["n_users"] == 4000
    assert evaluated["ndcg@10"] == pytest.approx(trained["test"]["ndcg@10"], abs=1e-4)
