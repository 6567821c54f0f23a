"""Two settings of one `tritonrec bench batching` report compared directly (the report compares each with
no_batching): requests/s of A over B per candidate count and tool, median (min-max), with the verdict.

    .venv/bin/python bench/tools/batching_pair.py REPORT/batching.json dynamic_cancel_check dynamic
"""

import argparse
import json
from pathlib import Path

from tritonrec.spread import Spread, compare


def main() -> None:
    """Print one line per candidate count and tool."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("a")
    parser.add_argument("b")
    args = parser.parse_args()
    results = json.loads(args.report.read_text())["results"]
    for n, rows in results.items():
        for tool in ("tritonrec", "perf_analyzer"):
            a, b = (rows[name].get(tool) or {} for name in (args.a, args.b))
            if not a.get("summary") or not b.get("summary"):
                continue
            mine, theirs = (Spread.from_dict(x["summary"]["requests_per_second"]) for x in (a, b))
            c = compare(mine, theirs, a_name=args.a, b_name=args.b)
            print(f"N={n}, {tool}: {c.ratio:.2f}x ({c.ratio_min:.2f}-{c.ratio_max:.2f}), {c.verdict}")


if __name__ == "__main__":
    main()
