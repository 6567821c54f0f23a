"""Write bench/results/README.md: every record, one folder per machine and date, its commit and what replaced it.

    .venv/bin/python bench/tools/index_results.py          # rewrite the index
    .venv/bin/python bench/tools/index_results.py --check  # exit 1 if it is out of date (a unit test runs this)

The records themselves say where and from which commit they were made (`tritonrec.records.record_index` reads
them back); the notes below say only what a later record superseded, which no record can know.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from tritonrec.records import RecordEntry, record_index

ROOT = Path(__file__).resolve().parents[2] / "bench" / "results"

MACHINES = {  # folders whose records predate the host facts: what ENVIRONMENT.md and the sessions recorded
    "2026-11-27-epyc-2c": "AMD EPYC, 2 cores (AVX-512 VNNI; the records predate host facts and commits)",
}

SUPERSEDED = {
    "2026-11-27-epyc-2c": "the first harness: single runs in a fixed order; superseded by the 2026-12-02 records",
    "2026-12-02-xeon-amx-2c/select/select.json": "select-rerun/ (the same command from a committed tree)",
    "2026-12-02-xeon-amx-2c/client-small-floor/client.json": "client-base-floor/ (committed)",
    "2026-12-02-xeon-amx-2c/tune/tune.json": "2026-12-02-epyc-2c/tune-grid-rerun/ (the candidate-grid graph)",
    "2026-12-02-epyc-2c/efficiency-breakdown/efficiency.json": "efficiency-grid/ (committed, the candidate-grid graph)",
    "2026-12-02-epyc-2c/efficiency-breakdown-tuned/efficiency.json": "efficiency-grid/ (the shipped configuration)",
    "2026-12-02-epyc-2c/tune-grid/tune.json": "tune-grid-rerun/ (the same command, with the padded layout beside)",
}


def _note(entry: RecordEntry) -> str:
    path = entry.path.as_posix()
    note = SUPERSEDED.get(path) or next((n for k, n in SUPERSEDED.items() if path.startswith(k + "/")), "")
    if not entry.committed:
        made = "uncommitted tree" if entry.commit else "commit not recorded"
        note = f"{made}; {note}" if note else made
    return note


def render(entries: list[RecordEntry]) -> str:
    folders: dict[str, list[RecordEntry]] = defaultdict(list)
    for entry in entries:
        folders[entry.path.parts[0]].append(entry)
    lines = [
        "# bench/results",
        "",
        "One folder per machine and date (`<date>-<cpu family>[-amx]-<cores>c`, named by",
        "`tritonrec.records.results_folder`): records of two machines are never compared. Every record's JSON holds",
        "the command that made it, its host (CPU model, ISA flags, cores), its tool versions and its commit; a commit",
        "ending in `-dirty` was an uncommitted tree. The docs quote only records of committed trees. Written by",
        "`bench/tools/index_results.py` from the records themselves; a test checks it is current.",
        "",
    ]
    for folder, rows in sorted(folders.items()):
        cpus = sorted({e.cpu for e in rows if e.cpu})
        machine = MACHINES.get(folder) or ", ".join(cpus) or "not recorded"
        lines += [f"## `{folder}/`", "", f"Machine: {machine}.", ""]
        if folder in SUPERSEDED:
            lines += [f"Note: {SUPERSEDED[folder]}.", ""]
        lines += ["| record | command | date | commit | note |", "|---|---|---|---|---|"]
        for e in rows:
            record = e.path.relative_to(folder).as_posix()
            command = e.command if len(e.command) <= 60 else e.command[:57] + "..."
            lines.append(f"| [`{record}`]({e.path.as_posix()}) | `{command}` | {e.date or '-'} | {e.commit or '-'} "
                         f"| {_note(e) if folder not in SUPERSEDED else ''} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if bench/results/README.md is out of date")
    args = parser.parse_args()
    text = render(record_index(ROOT))
    index = ROOT / "README.md"
    if args.check:
        current = index.read_text() if index.is_file() else ""
        if current != text:
            print(f"{index} is out of date: .venv/bin/python bench/tools/index_results.py", file=sys.stderr)
            return 1
        return 0
    index.write_text(text)
    print(f"wrote {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
