"""bench/results: one machine per folder, an index that is current, and every record a doc links to exists."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tritonrec.records import HostFacts, record_index, results_folder

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


def test_every_results_folder_holds_one_machine():
    machines: dict[str, set[str]] = {}
    for entry in record_index(RESULTS):
        if entry.cpu:
            machines.setdefault(entry.path.parts[0], set()).add(entry.cpu)
    assert machines, "no record names its host"
    assert {folder: cpus for folder, cpus in machines.items() if len(cpus) > 1} == {}
    for folder, (cpu,) in machines.items():  # the folder's name says which machine
        family = "xeon-amx" if "Xeon" in cpu and "AMX" in cpu else "epyc" if "EPYC" in cpu else "?"
        assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d-{family}-\d+c", folder), (folder, cpu)


def test_the_folder_name_comes_from_the_host():
    host = HostFacts(
        hostname="h", platform="p", python="3.11", cpu_model="Intel(R) Xeon(R) Processor", cpu_count=2,
        cpu_affinity=2, cpu_quota=None, isa=("avx2", "amx_int8"), memory_gib=23.5, gpu="none",
    )  # fmt: skip
    import datetime as dt

    assert results_folder(Path("r"), dt.date(2026, 12, 7), host) == Path("r/2026-12-07-xeon-amx-2c")


def test_the_results_index_is_current():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "tools" / "index_results.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def _doc_links() -> list[tuple[str, str]]:
    docs = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    links = []
    for doc in docs:
        if doc.startswith("bench/results/"):
            continue
        for target in re.findall(r"\]\(([^)#\s]+)", (ROOT / doc).read_text()):
            if "bench/results/" in target or target.startswith("results/"):
                links.append((doc, target))
    return links


def test_every_record_a_doc_links_to_exists():
    links = _doc_links()
    assert len(links) >= 20
    missing = [(doc, target) for doc, target in links if not ((ROOT / doc).parent / target).resolve().exists()]
    assert missing == []


def test_the_docs_quote_no_record_of_an_uncommitted_tree():
    # bench/README.md and the index list every record, each marked; the README and the guides quote committed ones
    uncommitted = {RESULTS / e.path for e in record_index(RESULTS) if e.commit and not e.committed}
    quoted = []
    for doc, target in _doc_links():
        path = ((ROOT / doc).parent / target).resolve()
        records = [path.with_suffix(".json")] if path.suffix in (".md", ".json") else list(path.glob("*.json"))
        quoted += [(doc, r.relative_to(RESULTS).as_posix()) for r in records if r in uncommitted]
    assert [(doc, r) for doc, r in quoted if doc != "bench/README.md"] == []
