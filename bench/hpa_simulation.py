"""HPA simulation of the Helm chart's autoscaling: queue time alone (the chart before issue 18) vs inferences/s
per pod with the queue-time guard (the chart now), on one traffic ramp, for pods with the bench's capacity.

    .venv/bin/python bench/hpa_simulation.py

No arguments: every input is a file of this repository, read here and recorded in the JSON:
- one pod's capacity curve: bench/results/2026-11-27-epyc-2c/sweep/sweep.json (ranker_cpu on 2 CPU cores; no GPU
  was available, so this is the CPU pod's curve: the point is the control law, not the GPU's numbers);
- the HPA: helm/tritonrec/values.yaml (behavior, queue-time target) with ci/gpu-hpa-values.yaml (min/max
  replicas, inferences/s target = 70% of that pod's capacity);
- the queue bound: max_queue_size of model_repository/ranker_cpu/config.pbtxt;
- assumed, not measured: pods serve 300 s after the HPA creates them (image pull, engine build, model load), and
  the traffic ramp below.
Writes bench/results/<today>-<machine>/hpa-simulation/hpa-simulation.{json,md,png}.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tritonrec.bench.capacity.autoscaling import (
    Behavior,
    CapacityCurve,
    HpaConfig,
    MetricKind,
    MetricTarget,
    PodModel,
    TrafficRamp,
)
from tritonrec.bench.capacity.autoscaling_report import write_hpa_comparison
from tritonrec.records import results_folder

ROOT = Path(__file__).resolve().parents[1]
SWEEP = "bench/results/2026-11-27-epyc-2c/sweep/sweep.json"
MINUTE = 60
# Quiet, a 30-minute ramp to 8x, an hour's plateau, down to 3x, an hour's plateau.
TRAFFIC = TrafficRamp(
    points=(
        (0, 300.0),
        (10 * MINUTE, 300.0),
        (40 * MINUTE, 2400.0),
        (100 * MINUTE, 2400.0),
        (120 * MINUTE, 900.0),
        (180 * MINUTE, 900.0),
    )
)
# The plateaus, from 15 minutes after each ramp (a pod takes 5 to serve, the scale-down window another 5).
WINDOWS = ((55 * MINUTE, 100 * MINUTE), (135 * MINUTE, 180 * MINUTE))
STARTUP_S = 300


def chart_hpas() -> dict[str, HpaConfig]:
    values = yaml.safe_load((ROOT / "helm/tritonrec/values.yaml").read_text())["autoscaling"]
    scenario = yaml.safe_load((ROOT / "helm/tritonrec/ci/gpu-hpa-values.yaml").read_text())["autoscaling"]
    behavior = Behavior.from_values(values["behavior"])
    queue = MetricTarget(kind=MetricKind.QUEUE_TIME, target=float(values["queueTime"]["targetMicroseconds"]))
    rate = MetricTarget(kind=MetricKind.INFERENCE_RATE, target=float(scenario["inferenceRate"]["targetPerPod"]))
    bounds = {"min_replicas": scenario["minReplicas"], "max_replicas": scenario["maxReplicas"]}
    return {
        "queue time only (before)": HpaConfig(metrics=(queue,), behavior=behavior, **bounds),
        "inferences/s + queue guard (now)": HpaConfig(metrics=(rate, queue), behavior=behavior, **bounds),
    }


def max_queue_size() -> int:
    config = (ROOT / "model_repository/ranker_cpu/config.pbtxt").read_text()
    return int(re.search(r"max_queue_size:\s*(\d+)", config).group(1))


def main() -> Path:
    curve = CapacityCurve.from_sweep(json.loads((ROOT / SWEEP).read_text()), source=SWEEP)
    out = results_folder(ROOT / "bench" / "results") / "hpa-simulation"
    report = write_hpa_comparison(
        out,
        chart_hpas(),
        curve=curve,
        traffic=TRAFFIC,
        pods=PodModel(startup_s=STARTUP_S, max_queue=max_queue_size()),
        windows=WINDOWS,
        command="python bench/hpa_simulation.py",
    )
    for name, run in report["runs"].items():
        print(
            name,
            [(s["window_scale_events"], s["window_replicas_min"], s["window_replicas_max"]) for s in run["summary"]],
        )
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
