#!/usr/bin/env bash
# One locust worker process at N=8 (bench/scenarios/small-n8.toml, 64 users, 40 s) against the same running
# ranker_cpu (the `small` export), this tree's locust user and another tree's (the client before a change),
# interleaved REPEATS times; writes each run's locust.json/.md and summary.json/.md (median, min-max of req/s and of
# requests per locust CPU-second).
#
#   bash bench/tools/locust_before_after.sh bench/results/<date>-<machine>/locust-n8 /path/to/before/src
set -euo pipefail
out="${1:?usage: locust_before_after.sh OUT_DIR BASELINE_SRC}"
before="${2:?usage: locust_before_after.sh OUT_DIR BASELINE_SRC}"
repeats="${REPEATS:-3}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
tr="$root/.venv/bin/tritonrec"
repo="$(mktemp -d)/repo"
mkdir -p "$out"
"$tr" repo build --export "$root/artifacts/onnx/beauty-small" --out "$repo" >/dev/null
"$tr" serve --repo "$repo" --models ranker_cpu --grpc-port 19001 --http-port 19000 --metrics-port 19002 \
    --log-file "$out/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 90); do curl -sf localhost:19000/v2/models/ranker_cpu/ready && break; sleep 2; done
for i in $(seq "$repeats"); do
    for who in after before; do
        extra=()
        [[ $who == before ]] && extra=(env "PYTHONPATH=$before")
        echo "run $i/$repeats: $who ..."
        "${extra[@]}" "$root/.venv/bin/python" -m tritonrec bench locust --url 127.0.0.1:19001 \
            --scenario "$root/bench/scenarios/small-n8.toml" --out "$out/$who-$i" >/dev/null || true
    done
done
"$root/.venv/bin/python" - "$out" "$before" <<'PY'
import json, sys
from pathlib import Path
from tritonrec.records import new_record
from tritonrec.spread import spread
out, before = Path(sys.argv[1]), sys.argv[2]
rows = {}
for who in ("after", "before"):
    runs = [json.loads(p.read_text()) for p in sorted(out.glob(f"{who}-*/locust.json"))]
    rows[who] = {
        "runs": len(runs),
        "requests_per_second": spread([r["requests_per_second"] for r in runs]).to_dict(),
        "requests_per_locust_cpu_second": spread([r["requests_per_locust_cpu_second"] for r in runs]).to_dict(),
        "locust_cpu_s": spread([r["locust_cpu_s"] for r in runs]).to_dict(),
        "failures": sum(int(r.get("failures", 0)) for r in runs),
    }
record = {**new_record("bash bench/tools/locust_before_after.sh " + " ".join(sys.argv[1:])), "baseline_src": before,
          "scenario": "bench/scenarios/small-n8.toml (64 users, N=8, 40 s, one locust process)", "results": rows}
(out / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
f = lambda s: f"{s['median']:,.0f} ({s['min']:,.0f}-{s['max']:,.0f})"
lines = ["# One locust worker at N=8: this client against the one before", "", f"Command: `{record['command']}`  ",
         f"Date: {record['date']}", "", "| locust user | runs | requests/s | requests per locust CPU-second | locust CPU s | failures |",
         "|---|---|---|---|---|---|"]
lines += [f"| {who} | {r['runs']} | {f(r['requests_per_second'])} | {f(r['requests_per_locust_cpu_second'])} "
          f"| {f(r['locust_cpu_s'])} | {r['failures']} |" for who, r in rows.items()]
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
