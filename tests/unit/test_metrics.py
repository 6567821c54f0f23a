import math

import numpy as np
import pytest

from tritonrec.data.splits import EvalSet, FeatureBatch
from tritonrec.metrics import evaluate, logloss, ranking_metrics, roc_auc

pytestmark = pytest.mark.unit


def test_perfect_ranking_scores_one_everywhere():
    m = ranking_metrics([[3.0, 1.0, 2.0]], [[1, 0, 0]])
    assert m["hr@1"] == m["ndcg@10"] == m["mrr"] == m["auc"] == 1.0
    assert m["n_users"] == 1


def test_positive_in_third_place_matches_hand_computed_values():
    m = ranking_metrics([[1.0, 3.0, 2.0, 0.0]], [[1, 0, 0, 0]])
    assert m["hr@1"] == 0.0
    assert m["hr@5"] == 1.0
    assert m["ndcg@5"] == pytest.approx(1 / math.log2(4))
    assert m["mrr"] == pytest.approx(1 / 3)
    assert m["auc"] == pytest.approx(1 / 3)


def test_ties_rank_the_positive_pessimistically():
    m = ranking_metrics([[1.0, 1.0, 1.0]], [[1, 0, 0]])
    assert m["hr@1"] == 0.0
    assert m["mrr"] == pytest.approx(1 / 3)
    assert m["auc"] == pytest.approx(0.5)


def test_two_positives_use_graded_ndcg_and_pairwise_auc():
    m = ranking_metrics([[0.9, 0.8, 0.1, 0.7]], [[1, 0, 1, 0]])
    dcg = 1 + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg@5"] == pytest.approx(dcg / idcg)
    assert m["auc"] == pytest.approx(0.5)
    assert m["mrr"] == 1.0


def test_rows_without_positives_are_not_counted_as_users():
    m = ranking_metrics([[2.0, 1.0], [0.5, 0.1]], [[1, 0], [0, 0]])
    assert m["n_users"] == 1
    assert m["hr@1"] == 1.0


def test_pooled_auc_handles_ties_like_mann_whitney():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == pytest.approx(0.5)
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))


def test_logloss_of_zero_logits_is_log_two():
    assert logloss([0.0, 0.0], [1, 0]) == pytest.approx(math.log(2))


def test_nan_scores_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        ranking_metrics([[np.nan, 1.0]], [[1, 0]])


def test_evaluate_rejects_a_scorer_with_the_wrong_shape():
    rows = EvalSet(np.zeros((3, 4), np.int64), np.ones((3, 5), np.int64), np.zeros((3, 5), np.float32))

    def bad(batch: FeatureBatch) -> np.ndarray:
        return np.zeros((len(batch.candidates), 2))

    with pytest.raises(ValueError, match="shape"):
        evaluate(bad, rows)


def test_evaluate_batches_give_the_same_result_as_one_pass():
    rng = np.random.default_rng(0)
    labels = np.zeros((50, 10), np.float32)
    labels[:, 0] = 1
    rows = EvalSet(np.zeros((50, 3), np.int64), rng.integers(1, 100, (50, 10)), labels)
    table = rng.normal(size=101)

    def scorer(batch: FeatureBatch) -> np.ndarray:
        return table[batch.candidates]

    assert evaluate(scorer, rows, batch_size=7) == evaluate(scorer, rows, batch_size=1000)
