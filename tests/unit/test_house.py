"""The house: imports run down the layers of DESIGN.md (import-linter, as `make lint` runs it), no cycles, and no
package holding more than a quarter of the library."""

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import grimp
import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "src" / "tritonrec"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", str(cwd / "pyproject.toml")],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tritonrec layers: imports only run down KEPT" in result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module,upward,reported",
    [
        # the ground imports the CLI: the lowest layers reaching for the top
        ("errors.py", "from tritonrec.cli import main", "tritonrec.errors is not allowed to import tritonrec.cli"),
        # a measuring tool reaches for a study (the kind of tie the house review found)
        ("measure/points.py", "import tritonrec.bench.serving.sweep", "tritonrec.measure is not allowed to import"),
    ],
)
def test_an_upward_import_breaks_the_layers_contract(tmp_path, module, upward, reported):
    shutil.copytree(LIBRARY, tmp_path / "src" / "tritonrec", ignore=shutil.ignore_patterns("__pycache__", "datasets"))
    (tmp_path / "src" / "tritonrec" / "datasets").mkdir()
    (tmp_path / "src" / "tritonrec" / "datasets" / "__init__.py").write_text("")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "tritonrec" / module
    target.write_text(target.read_text() + f"\n{upward}  # noqa\n")
    result = _lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "tritonrec layers: imports only run down BROKEN" in result.stdout
    assert reported in result.stdout


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("tritonrec")
    cycles = [
        (a, b)
        for a in graph.modules
        for b in graph.find_modules_directly_imported_by(a)
        if a < b and graph.chain_exists(importer=b, imported=a)
    ]
    assert cycles == []


def test_no_package_holds_more_than_a_quarter_of_the_library():
    lines: Counter[str] = Counter()
    for path in LIBRARY.rglob("*.py"):
        part = path.relative_to(LIBRARY).parts[0]
        lines[part.removesuffix(".py")] += len(path.read_text().splitlines())
    total = sum(lines.values())
    biggest, count = lines.most_common(1)[0]
    assert count <= total / 4, f"{biggest} holds {count:,} of {total:,} lines"
