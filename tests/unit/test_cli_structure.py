"""The CLI's shape: a short table of commands, one module per command, no torch where it is not needed, and every
command line in the docs accepted by the real parser."""

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tritonrec.cli.main import COMMANDS, build_parser

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "src" / "tritonrec" / "cli"
# Every Markdown file of the checkout but the recorded results (their commands are history, kept as they ran)
DOCS = sorted(
    ROOT / path
    for path in subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not path.startswith("bench/results/")
)
TORCH_FREE = [
    ["query", "--help"],
    ["serve", "--help"],
    ["repo", "build", "--help"],
    ["bench", "sweep", "--help"],
    ["bench", "perf-analyzer", "--help"],
    ["bench", "locust", "--help"],
    ["bench", "efficiency", "--help"],
    ["bench", "model-analyzer", "--help"],
]


def test_main_is_a_short_table():
    assert len((CLI / "main.py").read_text().splitlines()) < 120


def _command_modules() -> list[Path]:
    """Every module a command's table entry names, with the modules of the ``bench`` package."""
    return sorted(CLI.glob("*_cmd.py")) + sorted((CLI / "bench").glob("*.py"))


def test_every_command_module_registers_its_own_parser_and_imports_no_other_command():
    for path in _command_modules():
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in imported if m.endswith("_cmd")}, f"{path.name} imports another command module"
        if path.name != "options.py":  # the bench studies' shared arguments register nothing
            assert any(isinstance(n, ast.FunctionDef) and n.name == "register" for n in tree.body), path.name
    assert {module for module, _ in COMMANDS.values()} == {p.stem for p in CLI.glob("*_cmd.py")} | {"bench"}


def test_the_bench_studies_share_one_ending():
    # every bench handler ends through options.finish: no module prints a report's Markdown itself
    for path in sorted((CLI / "bench").glob("*.py")):
        text = path.read_text()
        assert "print(report.markdown)" not in text or path.name == "options.py", path.name
        if path.name not in ("options.py", "__init__.py"):
            assert "return finish(" in text, path.name


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser(command).parse_args([command, "--help"])
    assert done.value.code == 0
    assert f"usage: tritonrec {command}" in capsys.readouterr().out


def test_unknown_command_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "tritonrec.cli.main", "trian"], capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice: 'trian'" in result.stderr and "'train'" in result.stderr


@pytest.mark.parametrize("argv", TORCH_FREE, ids=[" ".join(a[:-1]) for a in TORCH_FREE])
def test_client_and_bench_commands_import_no_training_stack(argv):
    script = (
        "import sys\nfrom tritonrec.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'onnx', 'onnxscript', 'tritonrec.pipeline') if m in sys.modules)\n"
        "print(','.join(heavy), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stderr.strip() == ""


def _doc_commands(path: Path) -> list[list[str]]:
    """Every ``tritonrec ...`` command line of a Markdown file: in fenced code blocks, and in inline code spans.

    An inline span that names a command without options (`tritonrec bench gpu`) is checked as that command's
    ``--help``: the words must name a real command.
    """
    commands, in_block, pending = [], False, ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            for span in re.findall(r"`((?:\S*/)?tritonrec\s[^`]*)`", line):
                words = [w for w in shlex.split(span.split(" #", 1)[0])[1:] if w not in ("...", "&")]
                commands.append(words if any(w.startswith("-") for w in words) else [*words, "--help"])
            continue
        text = pending + line.split(" #", 1)[0].strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        match = re.match(r"^(?:\S*/)?tritonrec\s+(.*)$", text)
        if match:
            words = [w for w in shlex.split(match.group(1)) if w not in ("...", "&")]
            commands.append(words)
    return commands


DOC_COMMANDS = [(path.relative_to(ROOT), words) for path in DOCS for words in _doc_commands(path)]


def test_the_docs_show_command_lines():
    assert len(DOC_COMMANDS) >= 15
    where = {str(path) for path, _ in DOC_COMMANDS}
    assert {"README.md", "docs/reliability.md", "bench/gpu/README.md", "helm/README.md"} <= where


@pytest.mark.parametrize("where,words", DOC_COMMANDS, ids=[f"{p}: {' '.join(w[:3])}" for p, w in DOC_COMMANDS])
def test_every_documented_command_line_parses(where, words):
    parser = build_parser(words[0])
    try:
        args = parser.parse_args(words)
    except SystemExit as e:  # argparse exits on an unknown flag or a bad choice; 0 after printing --help
        if e.code == 0 and words[-1] == "--help":
            return
        pytest.fail(f"{where}: `tritonrec {' '.join(words)}` is refused by the parser (exit {e.code})")
    assert callable(args.handler)


def test_test_modules_have_unique_basenames():
    # the test folders are not packages (rootdir-relative imports), so two files of one name break collection
    from collections import Counter

    tests = Path(__file__).resolve().parents[1]
    names = Counter(p.name for p in tests.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
