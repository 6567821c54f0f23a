"""Every preset exports to ONNX with dynamic batch and candidate dimensions and matches eager PyTorch."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tritonrec.model.config import PRESETS
from tritonrec.model.ranker import RankingModel

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_onnx_export_has_dynamic_batch_and_matches_eager(name, tiny_spec_and_catalogue, tmp_path: Path):
    spec, catalogue = tiny_spec_and_catalogue
    torch.manual_seed(0)
    model = RankingModel(spec, PRESETS[name], catalogue).eval()
    batch, candidates = torch.export.Dim("batch"), torch.export.Dim("candidates")
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model,
        (torch.randint(0, 301, (2, spec.history_len)), torch.randint(1, 301, (2, 5))),
        str(path),
        dynamo=True,
        opset_version=18,
        input_names=["history", "candidates"],
        output_names=["scores"],
        dynamic_shapes={"histories": {0: batch}, "candidates": {0: batch, 1: candidates}},
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    # other batch sizes than the export's, OOV/negative/padding ids and an empty history
    for rows, n in ((1, 1), (7, 13), (33, 200)):
        history = rng.integers(-3, 340, (rows, spec.history_len))
        history[0] = 0
        cands = rng.integers(-3, 340, (rows, n))
        expected = model(torch.from_numpy(history), torch.from_numpy(cands)).detach().numpy()
        (got,) = session.run(["scores"], {"history": history, "candidates": cands})
        assert got.shape == (rows, n)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
