"""Do several runs of one `tritonrec select` command pick the same candidate? One record of the runs side by side.

    .venv/bin/python bench/tools/select_stability.py OUT RUN_DIR [RUN_DIR ...]

Each RUN_DIR holds the select.json of one run of the same command (examples/dlrm/select.sh makes three). OUT gets
stability.json + stability.md: each run's pick, wall time and the pick's figures, whether every run picked the same
candidate, and every served candidate's candidates/s in each run (median and min-max), so a change of pick can be
read against the spreads that decided it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tritonrec.records import markdown_header, new_record, write_report
from tritonrec.spread import Spread


def _without_out(command: str) -> str:
    """The command without its ``--out FOLDER`` (each run writes its own folder)."""
    words = command.split()
    return " ".join(w for i, w in enumerate(words) if w != "--out" and (i == 0 or words[i - 1] != "--out"))


def stability(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The picks of ``runs`` (select.json records of one command) and each served candidate's throughput per run."""
    commands = {_without_out(r["command"]) for r in runs}
    picks = [r["chosen"] for r in runs]
    served = [row["name"] for row in runs[0]["candidates"] if row["measured"] and row["served"]]
    per_run = []
    for r in runs:
        rows = {row["name"]: row for row in r["candidates"]}
        per_run.append(
            {
                "chosen": r["chosen"],
                "wall_s": r.get("wall_s"),
                "commit": r.get("versions", {}).get("tritonrec"),
                "command": _without_out(r["command"]),
                "cand_per_s": {n: (rows[n].get("cand_per_s") if n in rows else None) for n in served},
                "measured": sum(1 for row in r["candidates"] if row["measured"]),
            }
        )
    return {
        "same_command": len(commands) == 1,
        "commands": sorted(commands),
        "picks": picks,
        "stable": len(set(picks)) == 1,
        "runs": per_run,
        "served": served,
    }


def markdown(record: dict[str, Any]) -> str:
    """The record as Markdown: the verdict, each run's pick, the served candidates' throughput per run."""
    s = record["stability"]
    verdict = "every run picked the same candidate" if s["stable"] else "the runs picked different candidates"
    of = "one command" if s["same_command"] else f"{len(s['commands'])} commands"
    lines = [*markdown_header(f"select stability: {len(s['picks'])} runs of {of}", record), ""]
    lines += [f"**{verdict}**: " + ", ".join(f"`{p}`" for p in s["picks"]) + ".", ""]
    if s["same_command"]:
        lines += ["Command, each run with its own --out:", ""]
    else:
        lines += ["Commands (NOT the same; each run with its own --out):", ""]
    for command in s["commands"]:
        runs = [str(i) for i, run in enumerate(s["runs"], start=1) if run.get("command", command) == command]
        lines += [f"    {command}", ""] if s["same_command"] else [f"runs {', '.join(runs)}:", "", f"    {command}", ""]
    lines += ["| run | pick | measured | wall min | commit |", "|---|---|---|---|---|"]
    for i, run in enumerate(s["runs"], start=1):
        wall = "-" if run["wall_s"] is None else f"{run['wall_s'] / 60:.1f}"
        lines.append(f"| {i} | {run['chosen']} | {run['measured']} | {wall} | {run.get('commit') or '-'} |")
    lines += ["", "Served candidates/s per run (median (min-max) of the side-by-side rounds):", ""]
    lines += ["| candidate | " + " | ".join(f"run {i}" for i in range(1, len(s["runs"]) + 1)) + " |"]
    lines += ["|---|" + "---|" * len(s["runs"])]
    for name in s["served"]:
        cells = []
        for run in s["runs"]:
            cps = run["cand_per_s"].get(name)
            cells.append("-" if not cps else Spread.from_dict(cps).text(",.0f"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Read the runs, write OUT/stability.json and .md, print the verdict; exit 1 when the picks differ."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("runs", type=Path, nargs="+", help="folders holding one select.json each")
    args = p.parse_args(argv)
    runs = [json.loads((d / "select.json").read_text()) for d in args.runs]
    record = {**new_record(" ".join(sys.argv)), "stability": stability(runs)}
    report = write_report(args.out, "stability", record, markdown(record))
    print(report.markdown)
    return 0 if record["stability"]["stable"] else 1


if __name__ == "__main__":
    sys.exit(main())
