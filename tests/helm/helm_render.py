"""Helpers of the chart tests: find and run the real helm binary, parse what it renders."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "tritonrec"
SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml"))
INSTALL_HINT = "make tools-helm (runs helm/tools/install_helm.sh into .tools/helm/)"
RELEASE = "rec"
NAMESPACE = "ranking"


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (PyYAML keeps the last one; kubectl's strict decoding fails)."""


def _no_duplicate_keys(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
    if duplicates:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}", node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def load_objects(text: str) -> list[dict[str, Any]]:
    """Parse a multi-document manifest, refusing duplicate keys; empty documents are dropped."""
    return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc]  # noqa: S506 - SafeLoader subclass


def find_helm() -> Path | None:
    """Return the helm binary to use, or None."""
    override = os.environ.get("TRITONREC_HELM")
    if override:
        return Path(override)
    local = ROOT / ".tools" / "helm" / "helm"
    if local.is_file():
        return local
    found = shutil.which("helm")
    return Path(found) if found else None


PROMETHEUS_HINT = "make tools-prometheus (runs helm/tools/install_prometheus.sh into .tools/prometheus/)"


def find_prometheus_tool(name: str) -> Path | None:
    """promtool or prometheus: $TRITONREC_PROMTOOL / $TRITONREC_PROMETHEUS, then .tools/prometheus/, then PATH."""
    override = os.environ.get(f"TRITONREC_{name.upper()}")
    if override:
        return Path(override)
    local = ROOT / ".tools" / "prometheus" / name
    if local.is_file():
        return local
    found = shutil.which(name)
    return Path(found) if found else None


def require_tool(path: Path | None, what: str, hint: str) -> Path:
    """The tool's path; without it fail when CI is set and skip elsewhere, naming the install command."""
    if path is None or not os.access(path, os.X_OK):
        message = f"{what} not found; install it with: {hint}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120, check=False)


def template(helm: Path, *values_args: str) -> subprocess.CompletedProcess[str]:
    return run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values_args)


@dataclass(frozen=True)
class Rendered:
    """The objects one scenario renders, with lookups by kind and name."""

    scenario: str
    objects: list[dict[str, Any]]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.scenario}: expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def maybe(self, kind: str) -> dict[str, Any] | None:
        found = self.all(kind)
        return found[0] if found else None

    @property
    def triton(self) -> dict[str, Any]:
        return self.one("Deployment", f"{RELEASE}-tritonrec")

    @property
    def triton_container(self) -> dict[str, Any]:
        containers = self.triton["spec"]["template"]["spec"]["containers"]
        return next(c for c in containers if c["name"] == "triton")
