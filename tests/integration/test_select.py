"""``tritonrec select`` end to end on the real server, perf_analyzer and a real browser.

What is asserted: every planned candidate is either measured or says why not; quality figures are those of
`tritonrec evaluate` on the same artifacts; the pick follows the rules; the report opens in headless Chromium with
the pick and both plots; `repo build --from-selection` serves the pick. Speed figures are never asserted.
"""

import contextlib
import io
import json
import os
import shutil

import pytest

from tritonrec.cli import main

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def selection(checkpoint_path, export_dir, beauty_slice_dir, perf_analyzer, tmp_path_factory):
    out = tmp_path_factory.mktemp("select")
    data = ["--dataset", "beauty", "--data-dir", str(beauty_slice_dir)]
    args = ["select", "--checkpoint", str(checkpoint_path), "--export", str(export_dir), *data, "--out", str(out)]
    args += ["--runtimes", "pytorch-eager,onnxruntime,triton,tensorrt", "--precisions", "fp32,fp16"]
    args += ["--quality-users", "64", "--repeats", "2", "--min-s", "0.2", "--candidates", "20-60"]
    args += ["--concurrency", "2,4", "--measurement-ms", "1000", "--rate", "20", "--p99-ms", "10000"]
    args += ["--perf-analyzer", str(perf_analyzer), "--json"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(args)
    assert code == 0
    return args, out, json.loads(stdout.getvalue())  # --json: stdout holds only the summary


def test_select_measures_every_candidate_it_can_and_says_why_not_for_the_others(selection):
    args, out, summary = selection
    rows = {r["name"]: r for r in summary["candidates"]}
    fields = {"name", "runtime", "precision", "model", "measured", "ndcg@10", "auc", "p99_ms", "cand_per_s", "bytes"}
    assert all(fields | {"meets_sla", "meets_quality", "reason"} <= set(r) for r in rows.values())
    measured = {n for n, r in rows.items() if r["measured"]}
    assert measured == {"base/pytorch-eager/fp32", "base/onnxruntime/fp32", "base/triton/fp32"}
    assert "exported without FP16" in rows["base/onnxruntime/fp16"]["reason"]  # the fixture's export has none
    assert "GPU" in rows["base/tensorrt/fp16"]["reason"]
    assert summary["chosen"] == "base/triton/fp32"  # the only served candidate, and the SLA is loose
    assert all(rows[n]["cand_per_s"] > 0 and rows[n]["bytes"] > 0 for n in measured)
    assert summary["peers"] == [] and summary["report"] == str(out)
    record = json.loads((out / "select.json").read_text())
    served = record["chosen_row"]["served_figures"]
    assert served["throughput"]["candidates_per_second"]["n"] == 2
    assert served["rate_point"]["latency_ms"]["p95"] is not None
    assert record["chosen_row"]["in_process"]["trials"] == 2


def test_quality_in_the_report_is_what_tritonrec_evaluate_says(selection, checkpoint_path, export_dir, capsys):
    args, out, _ = selection
    record = json.loads((out / "select.json").read_text())
    rows = {r["name"]: r for r in record["candidates"]}
    data = args[args.index("--dataset") : args.index("--dataset") + 4]
    for name, artifact in (
        ("base/pytorch-eager/fp32", ["--checkpoint", str(checkpoint_path)]),
        ("base/onnxruntime/fp32", ["--onnx", str(export_dir / "model_ragged.onnx")]),
        ("base/triton/fp32", ["--onnx", str(export_dir / "model_ragged.onnx")]),  # served: same graph, over gRPC
    ):
        assert main(["evaluate", *artifact, *data, "--limit", "64", "--sample", "--json"]) == 0  # select's sample
        evaluated = json.loads(capsys.readouterr().out)
        for key in ("auc", "ndcg@10", "hr@10", "logloss"):
            assert rows[name][key] == pytest.approx(evaluated[key], abs=6e-5), (name, key)


def test_the_html_report_opens_in_headless_chromium_with_the_pick_and_both_plots(selection, tmp_path):
    _, out, _ = selection
    if not os.path.exists(CHROMIUM):
        message = "chromium not installed: make tools-chromium (bench/tools/install_chromium.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    record = json.loads((out / "select.json").read_text())
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto((out / "select.html").as_uri())
            assert page.get_attribute("#pick", "data-chosen") == record["chosen"]
            assert record["chosen"] in page.inner_text("#pick")
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.alt, i.complete, i.naturalWidth])")
            assert sorted(alt for alt, _, _ in widths) == ["select_latency.png", "select_quality.png"]
            assert all(complete and width > 0 for _, complete, width in widths)  # decoded, not broken images
            shot = tmp_path / "select.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    shutil.copy(shot, out / "screenshot.png")


def test_repo_build_from_the_selection_serves_the_picked_graph(selection, tmp_path, capsys):
    _, out, _ = selection
    repo = tmp_path / "repo"
    assert main(["repo", "build", "--from-selection", str(out / "select.json"), "--out", str(repo)]) == 0
    config = (repo / "ranker_cpu" / "config.pbtxt").read_text()
    assert 'string_value: "model_ragged.onnx"' in config
    assert (repo / "ranker_cpu" / "1" / "model_ragged.onnx").is_file()
    assert "the pick of" in capsys.readouterr().out


def test_repo_build_refuses_a_selection_that_chose_nothing(tmp_path, capsys):
    report = tmp_path / "select.json"
    report.write_text(json.dumps({"chosen_row": None}))
    assert main(["repo", "build", "--from-selection", str(report), "--out", str(tmp_path / "r")]) == 1
    assert "no candidate met every constraint" in capsys.readouterr().err
