"""The ranking-quality report: train presets on datasets, evaluate on the test split, record everything.

Writes ``quality.json`` (every figure, per-epoch logs, the command, versions and host) and ``quality.md`` (the
summary table) into one results folder. Each row is a real training run on this machine; nothing is typed in.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.data.registry import prepare_dataset
from tritonrec.data.synthetic import SyntheticConfig
from tritonrec.model.config import PRESETS
from tritonrec.model.ranker import RankingModel
from tritonrec.train.loop import Loss, TrainConfig
from tritonrec.train.run import train_and_save

__all__ = [
    "host_info",
    "markdown_header",
    "preset_parameter_counts",
    "run_quality_report",
    "scale_parameter_counts",
    "write_markdown",
]

COLUMNS = ("auc", "auc_global", "hr@1", "hr@10", "ndcg@5", "ndcg@10", "mrr")
SCALE_ITEMS = 1_000_000


def host_info() -> dict[str, Any]:
    """Describe the machine and the library versions a result was measured with."""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:  # pragma: no cover - ml extra always installs it
        ort_version = "absent"
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "onnxruntime": ort_version,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }


def markdown_header(title: str, report: dict[str, Any]) -> list[str]:
    """First lines of a benchmark's Markdown: title, the command that produced it, the host it ran on."""
    host = report["host"]
    return [
        f"# {title}",
        "",
        f"Command: `{report['command']}`  ",
        f"Host: {host['platform']}, {host['cpu_count']} CPU threads, GPU: {host['gpu']}",
        "",
    ]


def preset_parameter_counts(spec: FeatureSpec) -> dict[str, int]:
    """Trainable parameters of every preset on the vocabularies of ``spec``."""
    return {name: RankingModel(spec, config).n_parameters() for name, config in sorted(PRESETS.items())}


def scale_parameter_counts(n_items: int = SCALE_ITEMS) -> dict[str, Any]:
    """Parameters of every preset on a synthetic catalogue of ``n_items`` items (default config otherwise)."""
    return {"n_items": n_items, "counts": preset_parameter_counts(SyntheticConfig(n_items=n_items).feature_spec())}


def run_quality_report(
    datasets: list[str],
    presets: list[str],
    out_dir: Path,
    *,
    max_minutes: float,
    checkpoints_dir: Path,
    command: str,
    seed: int = 0,
    valid_user_fraction: float = 1.0,
) -> dict[str, Any]:
    """Train every preset on every dataset, write ``quality.json`` and ``quality.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": command,
        "host": host_info(),
        "date": time.strftime("%Y-%m-%d"),
        "parameter_counts_at_scale": scale_parameter_counts(),
        "runs": [],
    }
    for dataset in datasets:
        data = prepare_dataset(dataset, seed=seed, valid_user_fraction=valid_user_fraction)
        parameter_counts = preset_parameter_counts(data.spec)
        for preset_name in presets:
            config = TrainConfig(loss=Loss(data.loss), seed=seed, max_minutes=max_minutes)
            run = train_and_save(data, preset_name, config, checkpoints_dir / f"{dataset}-{preset_name}")
            run.update(dataset=dataset, dataset_info=data.info, parameter_counts=parameter_counts)
            report["runs"].append(run)
            (out_dir / "quality.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    write_markdown(report, out_dir / "quality.md")
    return report


def _row(label: str, metrics: dict[str, Any]) -> str:
    cells = " | ".join(f"{metrics[k]:.4f}" for k in COLUMNS)
    return f"| {label} | {cells} |"


def write_markdown(report: dict[str, Any], path: Path) -> None:
    """Render the report's summary table as Markdown."""
    host = report["host"]
    lines = [
        "# Ranking quality (test split)",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; host: {host['platform']}, {host['cpu_count']} torch threads, GPU: {host['gpu']}; "
        f"torch {host['torch']}, onnxruntime {host['onnxruntime']}.",
        "",
        "| run | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for run in report["runs"]:
        name = f"{run['dataset']} / {run['preset']}"
        lines.append(_row(f"{name} (model)", run["test"]))
        lines.append(_row(f"{name} (popularity)", run["popularity_test"]))
        if "oracle_test" in run:
            lines.append(_row(f"{name} (ground truth)", run["oracle_test"]))
    lines += [
        "",
        "| run | parameters | train s | best epoch | stopped by | users evaluated |",
        "|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        lines.append(
            f"| {run['dataset']} / {run['preset']} | {run['n_parameters']:,} | {run['train_seconds']:.0f} | "
            f"{run['best_epoch']} | {run['stopped_by']} | {run['test']['n_users']:,} |"
        )
    counts = {run["dataset"]: run["parameter_counts"] for run in report["runs"]}
    lines += ["", "Parameters of every preset on each dataset's vocabulary:", ""]
    lines += ["| dataset | " + " | ".join(sorted(PRESETS)) + " |", "|---|" + "---|" * len(PRESETS)]
    for dataset, per_preset in counts.items():
        lines.append(f"| {dataset} | " + " | ".join(f"{per_preset[p]:,}" for p in sorted(PRESETS)) + " |")
    at_scale = report.get("parameter_counts_at_scale")
    if at_scale:
        cells = " | ".join(f"{at_scale['counts'][p]:,}" for p in sorted(PRESETS))
        lines.append(f"| synthetic, {at_scale['n_items']:,} items | {cells} |")
    path.write_text("\n".join(lines) + "\n")
