"""checkov 3.3.30 (PyPI, own virtualenv: `make tools-checkov`) on every rendered ci scenario of the chart.

Every finding must be listed, with its objects and the reason it does not apply, in helm/checkov-skips.yaml; an
entry that matches nothing fails too (the list cannot go stale), and so does a total that differs from the
recorded one. checkov runs without `--skip-check`: the list is checked here, not handed to checkov.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helm_render import CHART, ROOT, SCENARIOS, require_tool, template

pytestmark = pytest.mark.integration

SKIPS = ROOT / "helm" / "checkov-skips.yaml"
CHECKOV_HINT = "make tools-checkov (runs helm/tools/install_checkov.sh into .tools/checkov/)"


def find_checkov() -> Path | None:
    override = os.environ.get("TRITONREC_CHECKOV")
    if override:
        return Path(override)
    local = ROOT / ".tools" / "checkov" / "bin" / "checkov"
    if local.is_file():
        return local
    found = shutil.which("checkov")
    return Path(found) if found else None


@pytest.fixture(scope="module")
def findings(helm, tmp_path_factory) -> list[tuple[str, str, str]]:
    """(check id, Kind/name, scenario) of every failed check, checkov run once over all rendered scenarios."""
    checkov = require_tool(find_checkov(), "checkov", CHECKOV_HINT)
    version = subprocess.run([str(checkov), "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert version.stdout.strip() == yaml.safe_load(SKIPS.read_text())["checkov"], version.stdout
    folder = tmp_path_factory.mktemp("rendered")
    for scenario in SCENARIOS:
        result = template(helm, "--values", str(CHART / "ci" / f"{scenario}-values.yaml"))
        assert result.returncode == 0, result.stderr
        (folder / f"{scenario}.yaml").write_text(result.stdout)
    run = subprocess.run(
        [str(checkov), "-d", str(folder), "--framework", "kubernetes", "-o", "json", "--quiet", "--compact"]
        + ["--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode in (0, 1), run.stdout[-2000:] + run.stderr[-2000:]  # 1 = findings
    report = json.loads(run.stdout)
    reports = report if isinstance(report, list) else [report]
    assert [r["check_type"] for r in reports] == ["kubernetes"]
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 0
    out = []
    for failed in reports[0]["results"]["failed_checks"]:
        kind, namespace, name = failed["resource"].split(".", 2)
        assert namespace == "ranking", failed["resource"]  # CKV_K8S_21 would say "default"
        out.append((failed["check_id"], f"{kind}/{name}", Path(failed["file_path"]).stem))
    return out


@pytest.fixture(scope="module")
def skips() -> dict:
    return yaml.safe_load(SKIPS.read_text())


def test_every_checkov_finding_is_listed_with_a_reason(findings, skips):
    allowed = {(s["id"], obj) for s in skips["skips"] for obj in s["objects"]}
    unlisted = sorted({f for f in findings if (f[0], f[1]) not in allowed})
    assert not unlisted, f"checkov findings not in {SKIPS.name} (fix them or list them with a reason): {unlisted}"
    assert all(len(s["reason"]) > 80 for s in skips["skips"])


def test_no_listed_skip_is_stale(findings, skips):
    seen = {(f[0], f[1]) for f in findings}
    stale = [(s["id"], obj) for s in skips["skips"] for obj in s["objects"] if (s["id"], obj) not in seen]
    assert not stale, f"{SKIPS.name} lists findings checkov no longer reports: {stale}"


def test_the_recorded_total_is_the_one_checkov_reports(findings, skips):
    assert len(findings) == skips["findings"], sorted(findings)


def test_fixed_classes_of_findings_stay_fixed(findings):
    ids = {f[0] for f in findings}
    assert not ids & {"CKV_K8S_21", "CKV2_K8S_6"}  # namespace on every object; a NetworkPolicy for every pod
    assert not [f for f in findings if f[0] == "CKV_K8S_40" and "locust" in f[1]]
