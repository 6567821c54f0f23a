"""Helm chart fixtures: the real helm binary, and every ci/*-values.yaml scenario rendered once per session.

helm is found at $TRITONREC_HELM, then .tools/helm/helm (what `make tools-helm` installs), then on PATH; promtool
at $TRITONREC_PROMTOOL, then .tools/prometheus/promtool (`make tools-prometheus`), then on PATH. Without them the
tests that need them fail on CI (CI set) and are skipped elsewhere, both naming the install command.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helm_render import (
    CHART,
    INSTALL_HINT,
    PROMETHEUS_HINT,
    SCENARIOS,
    Rendered,
    find_helm,
    find_prometheus_tool,
    load_objects,
    require_tool,
    template,
)


@pytest.fixture(scope="session")
def helm() -> Path:
    path = find_helm()
    if path is None or not os.access(path, os.X_OK):
        message = f"helm not found ($TRITONREC_HELM, .tools/helm/helm or PATH); install it with: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def rendered(helm: Path) -> dict[str, Rendered]:
    """Each scenario rendered once: {scenario name: Rendered}."""
    out = {}
    for scenario in SCENARIOS:
        result = template(helm, "--values", str(CHART / "ci" / f"{scenario}-values.yaml"))
        assert result.returncode == 0, f"helm template {scenario} failed:\n{result.stderr}"
        objects = load_objects(result.stdout)
        out[scenario] = Rendered(scenario, objects)
    return out


@pytest.fixture(scope="session")
def promtool() -> Path:
    return require_tool(find_prometheus_tool("promtool"), "promtool", PROMETHEUS_HINT)
