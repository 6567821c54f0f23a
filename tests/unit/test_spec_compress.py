"""`tritonrec compress {prune,distill,share} --spec`: a model defined only in a test file (the bag ranker), trained
by a training hook defined here too, through the public CLI. The compressed model comes out as a spec of its own,
which `evaluate --spec` and `export onnx --spec` take like any other."""

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from tritonrec.cli import main
from tritonrec.spec import load_spec
from tritonrec.spec.rows import SpecRows, read_rows, split_rows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_spec import SPEC_TOML, VOCAB, make_bag_ranker  # noqa: E402

pytestmark = pytest.mark.unit

HERE = Path(__file__).resolve().parent
CALLS: list[dict] = []  # what the hook was given, for the tests to read


def fit_bag(module: torch.nn.Module, rows: SpecRows, targets: np.ndarray) -> None:
    """The training hook: Adam on the logloss toward ``targets``, the whole rows as one batch."""
    CALLS.append({"rows": len(rows), "targets": np.asarray(targets).copy()})
    features = rows.batch(0, len(rows))
    title, price = torch.from_numpy(features["title"]), torch.from_numpy(features["price"])
    goal = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(60):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(module(title, price), goal)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _learnable_rows(path: Path, n_queries: int = 80) -> None:
    """Clicks that follow the price (and a token), so a trained model ranks well above chance."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(5, 15, n_queries)
    rows = int(sizes.sum())
    titles = [rng.integers(1, VOCAB, rng.integers(1, 6)).tolist() for _ in range(rows)]
    price = rng.gamma(2.0, 10.0, rows).astype(np.float32)
    signal = np.log1p(price) - 3.0 + np.array([0.8 if 7 in t else 0.0 for t in titles])
    label = (rng.random(rows) < 1 / (1 + np.exp(-2 * signal))).astype(np.int64)
    table = {"query_id": np.repeat(np.arange(n_queries), sizes), "label": label, "title": titles, "price": price}
    pq.write_table(pa.table(table), path)


@pytest.fixture
def trained_spec(tmp_path):
    """The bag ranker trained by the hook on the calibration rows, its weights named by the spec with the hook."""
    _learnable_rows(tmp_path / "rows.parquet")
    text = SPEC_TOML.format(factory="make_bag_ranker", here=HERE)
    bare = tmp_path / "bare.toml"
    bare.write_text(text)
    spec = load_spec(bare)
    calibrate, _ = split_rows(spec, read_rows(spec))
    torch.manual_seed(0)
    model = make_bag_ranker()
    fit_bag(model, calibrate, calibrate.labels.astype(np.float32))
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    hooked = text.replace(
        'python_path = ["', 'weights = "weights.pt"\ntrain_hook = "test_spec_compress:fit_bag"\npython_path = ["', 1
    )
    (tmp_path / "spec.toml").write_text(hooked)
    CALLS.clear()
    return tmp_path / "spec.toml"


def _compress(args: list[str], capsys) -> dict:
    assert main(["compress", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_distill_trains_a_smaller_student_toward_the_teachers_probabilities(trained_spec, tmp_path, capsys):
    out = tmp_path / "distilled"
    record = _compress(
        ["distill", "--spec", str(trained_spec), "--student-kwargs", '{"dim": 2}', "--out", str(out)], capsys
    )
    parent, student = record["parent"], record["compressed"]
    assert student["params"] < parent["params"] and record["factory_kwargs"] == {"dim": 2}
    (call,) = CALLS  # the hook was given the calibration rows and soft targets, not the labels
    spec = load_spec(trained_spec)
    calibrate, _ = split_rows(spec, read_rows(spec))
    assert call["rows"] == len(calibrate) == record["calibration_rows"]
    assert 0 < call["targets"].min() and call["targets"].max() < 1 and len(np.unique(call["targets"])) > 10
    assert parent["quality"]["auc"] > 0.7  # a trained teacher, so the student's figures mean something
    assert student["quality"]["auc"] > parent["quality"]["auc"] - 0.05
    # the compressed model is a spec of its own: every --spec command takes it
    derived = load_spec(out / "spec.toml")
    assert derived.model.factory_kwargs == {"dim": 2} and derived.model.weights == out / "weights.pt"
    assert main(["evaluate", "--spec", str(out / "spec.toml"), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["auc"] == pytest.approx(student["quality"]["auc"], abs=1e-4)  # the JSON keeps 4 decimals
    assert main(["export", "onnx", "--spec", str(out / "spec.toml"), "--out", str(out / "onnx"), "--no-fp16"]) == 0
    assert (out / "onnx" / "model.onnx").is_file()
    assert "distill" in (out / "compress.md").read_text()


def test_prune_zeroes_the_share_of_linear_weights_and_fine_tunes_on_the_labels(trained_spec, tmp_path, capsys):
    out = tmp_path / "pruned"
    record = _compress(["prune", "--spec", str(trained_spec), "--ratio", "0.5", "--out", str(out)], capsys)
    (call,) = CALLS
    spec = load_spec(trained_spec)
    calibrate, _ = split_rows(spec, read_rows(spec))
    assert np.array_equal(call["targets"], calibrate.labels.astype(np.float32))  # fine-tuned on the labels
    weights = torch.load(out / "weights.pt", weights_only=True)
    head = weights["head.weight"]
    assert int((head == 0).sum()) >= head.numel() // 2  # the only Linear: half its weights zeroed, and kept zero
    parent_zeros = record["parent"]["zero_params"]  # the embedding's padding row
    assert record["compressed"]["zero_params"] >= parent_zeros + head.numel() // 2
    assert record["compressed"]["bytes"] == record["parent"]["bytes"]  # zeros in a dense tensor take the same bytes
    assert "weight_orig" not in " ".join(weights)  # the pruning made permanent: a plain state_dict


def test_share_retrains_the_factory_with_other_arguments_on_the_labels(trained_spec, tmp_path, capsys):
    record = _compress(
        ["share", "--spec", str(trained_spec), "--student-kwargs", '{"dim": 4}', "--out", str(tmp_path / "s")], capsys
    )
    (call,) = CALLS
    assert set(np.unique(call["targets"])) <= {0.0, 1.0} and record["method"] == "share"


def test_without_a_training_hook_the_methods_say_what_they_need(tmp_path, capsys):
    _learnable_rows(tmp_path / "rows.parquet")
    (tmp_path / "spec.toml").write_text(SPEC_TOML.format(factory="make_bag_ranker", here=HERE))
    args = ["compress", "distill", "--spec", str(tmp_path / "spec.toml"), "--student-kwargs", '{"dim": 2}']
    assert main([*args, "--out", str(tmp_path / "o")]) != 0
    assert "needs a training hook: name one in the spec as [model] train_hook" in capsys.readouterr().err
    args = ["compress", "distill", "--spec", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "o")]
    assert main(args) != 0
    assert "give them as --student-kwargs JSON" in capsys.readouterr().err
