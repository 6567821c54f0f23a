"""Without helm, promtool or checkov, the chart tests fail on CI and skip elsewhere, naming the install command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit


def run_chart_test_without(
    ci: bool,
    variable: str = "TRITONREC_HELM",
    test: str = "tests/helm/test_chart_render.py::test_every_ci_scenario_is_rendered",
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env[variable] = str(ROOT / "no-such-tool")
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("ci", "outcome"), [(True, "1 error"), (False, "1 skipped")])
def test_missing_helm_fails_on_ci_and_skips_elsewhere_naming_the_install_command(ci, outcome):
    result = run_chart_test_without(ci)
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "make tools-helm" in result.stdout
    assert (result.returncode != 0) is ci


@pytest.mark.parametrize(("ci", "outcome"), [(True, "1 error"), (False, "1 skipped")])
def test_missing_promtool_fails_on_ci_and_skips_elsewhere_naming_the_install_command(ci, outcome):
    test = (
        "tests/helm/test_prometheus_rules.py::test_promtool_checks_the_rendered_rules_with_their_annotation_templates"
    )
    result = run_chart_test_without(ci, "TRITONREC_PROMTOOL", test)
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "make tools-prometheus" in result.stdout
    assert (result.returncode != 0) is ci


@pytest.mark.parametrize(("ci", "outcome"), [(True, "1 error"), (False, "1 skipped")])
def test_missing_checkov_fails_on_ci_and_skips_elsewhere_naming_the_install_command(ci, outcome):
    test = "tests/helm/test_checkov.py::test_the_recorded_total_is_the_one_checkov_reports"
    result = run_chart_test_without(ci, "TRITONREC_CHECKOV", test)
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "make tools-checkov" in result.stdout
    assert (result.returncode != 0) is ci
