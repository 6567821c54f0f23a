"""The pure parts of the ranker_gpu Python model: the same request rules as ranker_cpu, packing, shape buckets, the
runner, and the torch.export program it serves (exported and loaded on the CPU)."""

import numpy as np
import pytest
import torch

from tritonrec.backends import ranker_cpu_model
from tritonrec.backends.ranker_gpu_model import (
    ProgramRunner,
    bucket_candidates,
    bucket_users,
    check_request,
    load_program,
    pack_requests,
    split_scores,
)
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import ExportError
from tritonrec.export.manifest import read_export_spec
from tritonrec.export.torch_export import PROGRAM_FILE, export_program
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel

pytestmark = pytest.mark.unit

LIMITS = {"max_history": 3, "max_candidates": 4}
REQUESTS = [
    ([[1, 2]], [[5, 6]]),
    (np.zeros((1, 0)), [[5]]),
    ([[1], [2]], [[5]]),
    ([[1, 2, 3, 4]], [[5]]),
    ([[1]], np.zeros((1, 0))),
    ([[1]], [[1, 2, 3, 4, 5]]),
    ([[1, -7]], [[5]]),
    ([[1]], [[-1, 3, -2]]),
    ([[0, 0, 9]], [[0, 2**40]]),
]


@pytest.mark.parametrize("history, candidates", REQUESTS)
def test_request_checks_say_what_ranker_cpu_says(history, candidates):
    h, c = np.asarray(history, dtype=np.int64), np.asarray(candidates, dtype=np.int64)
    expected = ranker_cpu_model.check_request(h, c, **LIMITS)
    assert check_request(torch.from_numpy(h), torch.from_numpy(c), **LIMITS) == expected


def test_packing_and_splitting_match_ranker_cpu():
    pairs = [([[1, 2]], [[5, 6, 7]]), (np.zeros((1, 0)), [[8]]), ([[3], [4]], [[9], [10]])]
    as_numpy = [(np.asarray(h, dtype=np.int64), np.asarray(c, dtype=np.int64)) for h, c in pairs]
    as_torch = [(torch.from_numpy(h), torch.from_numpy(c)) for h, c in as_numpy]
    histories, candidates = pack_requests(as_torch, history_len=4)
    expected_h, expected_c = ranker_cpu_model.pack_requests(as_numpy, history_len=4)
    assert histories.tolist() == expected_h.tolist() and candidates.tolist() == expected_c.tolist()
    parts = split_scores((candidates * 10).to(torch.bfloat16), as_torch)
    assert [p.dtype for p in parts] == [torch.float32] * 3 and all(p.is_contiguous() for p in parts)
    assert [p.tolist() for p in parts] == [[[50, 60, 70]], [[80]], [[90], [100]]]


@pytest.mark.parametrize(
    "users, bucket", [(1, 1), (2, 2), (3, 4), (33, 64), (64, 64), (65, 128), (129, 192), (512, 512), (4097, 4160)]
)
def test_user_buckets_are_powers_of_two_then_multiples_of_64(users, bucket):
    assert bucket_users(users) == bucket


def test_candidate_buckets_round_up_to_the_step():
    assert [bucket_candidates(n) for n in (1, 8, 9, 200, 201)] == [8, 8, 16, 200, 208]
    assert bucket_candidates(200, step=64) == 256


def test_runner_refuses_unknown_precision_and_graphs_off_cuda():
    with pytest.raises(ValueError, match="precision must be one of"):
        ProgramRunner(lambda h, c: c.float(), torch.device("cpu"), precision="int8")
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        ProgramRunner(lambda h, c: c.float(), torch.device("cpu"), cuda_graphs=True)


@pytest.fixture(scope="module")
def model(tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    torch.manual_seed(0)
    return RankingModel(spec, preset("small"), catalogue).eval()


@pytest.fixture(scope="module")
def program(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("program")
    return out, export_program(model, out)


def _batch(spec, users, n, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.integers(-5, spec.n_items + 20, (users, spec.history_len))
    c = rng.integers(-5, spec.n_items + 20, (users, n))
    return torch.from_numpy(h), torch.from_numpy(c)


def test_exported_program_scores_like_the_eager_model_and_records_its_spec(model, program):
    folder, exported = program
    assert exported.path == folder / PROGRAM_FILE and exported.parity.passed
    cases = {"real", "oov", "empty_history", "short_history", "full_history"}
    assert exported.parity.max_abs_by_case.keys() == cases
    assert read_export_spec(folder / PROGRAM_FILE) == model.spec  # program.json, readable without torch
    module = load_program(exported.path, torch.device("cpu"))
    for users, n in ((1, 1), (7, 200), (3, 33)):  # dynamic users and candidates, 1 included
        h, c = _batch(model.spec, users, n, seed=users)
        with torch.inference_mode():
            expected = model(h, c)
        torch.testing.assert_close(ProgramRunner(module, torch.device("cpu")).score(h, c), expected)


def test_runner_autocast_stays_close_to_fp32(model, program):
    module = load_program(program[1].path, torch.device("cpu"))
    h, c = _batch(model.spec, 4, 50)
    fp32 = ProgramRunner(module, torch.device("cpu")).score(h, c)
    for precision, atol in (("bf16", 0.05), ("fp16", 0.01)):
        low = ProgramRunner(module, torch.device("cpu"), precision=precision).score(h, c)
        assert low.dtype == torch.float32 and torch.isfinite(low).all()
        assert (low - fp32).abs().max() <= atol, precision


def test_export_refuses_a_model_it_cannot_trace(tmp_path):
    class Branchy(RankingModel):
        def forward(self, histories, candidates):
            if int(candidates.sum()) > 0:  # data-dependent control flow: torch.export cannot trace it
                return super().forward(histories, candidates)
            return candidates.float()

    spec = FeatureSpec(n_items=20, history_len=4)
    with pytest.raises(ExportError, match="torch.export of the ranker failed"):
        export_program(Branchy(spec, preset("small")), tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bench/gpu/run.sh runs it on one)")
@pytest.mark.parametrize("precision, atol", [("fp32", 1e-3), ("bf16", 0.05), ("fp16", 0.01)])
def test_program_on_cuda_with_graphs_scores_like_the_cpu(model, program, precision, atol):
    cuda = torch.device("cuda")
    runner = ProgramRunner(load_program(program[1].path, cuda), cuda, precision=precision, cuda_graphs=True)
    for users, n in ((5, 200), (64, 200), (3, 17), (5, 200)):  # bucketed shapes; a replay after other shapes
        h, c = _batch(model.spec, users, n, seed=users + n)
        with torch.inference_mode():
            expected = model(h, c)
        torch.testing.assert_close(runner.score(h, c), expected, atol=atol, rtol=0)
    assert len(runner.graphs) == 3
