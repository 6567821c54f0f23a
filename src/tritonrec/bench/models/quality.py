"""The ranking-quality report: train presets on datasets, evaluate on the test split, record everything.

Writes ``quality.json`` (every figure, per-epoch logs, the command, versions and host) and ``quality.md`` (the
summary table) into one results folder. Each row is a real training run on this machine; nothing is typed in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.data.registry import prepare_dataset
from tritonrec.data.synthetic import SyntheticConfig
from tritonrec.model.config import PRESETS, Preset
from tritonrec.model.ranker import RankingModel
from tritonrec.records import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.train.loop import Loss, TrainConfig
from tritonrec.train.run import train_and_save

__all__ = [
    "preset_parameter_counts",
    "run_quality_report",
    "scale_parameter_counts",
    "render_markdown",
]

COLUMNS = ("auc", "auc_global", "hr@1", "hr@10", "ndcg@5", "ndcg@10", "mrr")
SCALE_ITEMS = 1_000_000


def preset_parameter_counts(spec: FeatureSpec) -> dict[str, int]:
    """Trainable parameters of every preset on the vocabularies of ``spec``."""
    return {name.value: RankingModel(spec, config).n_parameters() for name, config in sorted(PRESETS.items())}


def scale_parameter_counts(n_items: int = SCALE_ITEMS) -> dict[str, Any]:
    """Parameters of every preset on a synthetic catalogue of ``n_items`` items (default config otherwise)."""
    return {"n_items": n_items, "counts": preset_parameter_counts(SyntheticConfig(n_items=n_items).feature_spec())}


def run_quality_report(
    datasets: list[str],
    presets: list[Preset],
    out_dir: Path,
    *,
    max_minutes: float,
    checkpoints_dir: Path,
    command: str,
    seed: int = 0,
    valid_user_fraction: float = 1.0,
    progress: Progress = quiet,
) -> Report:
    """Train every preset on every dataset, write ``quality.json`` and ``quality.md`` into ``out_dir``.

    ``quality.json`` is rewritten after every run, so a long report keeps what finished.
    """
    report: dict[str, Any] = {
        **new_record(command),
        "parameter_counts_at_scale": scale_parameter_counts(),
        "runs": [],
    }
    for dataset in datasets:
        data = prepare_dataset(dataset, seed=seed, valid_user_fraction=valid_user_fraction)
        parameter_counts = preset_parameter_counts(data.spec)
        for preset_name in presets:
            progress(f"training {preset_name.value} on {dataset} (at most {max_minutes:g} min) ...")
            config = TrainConfig(loss=Loss(data.loss), seed=seed, max_minutes=max_minutes)
            trained = train_and_save(data, preset_name, config, checkpoints_dir / f"{dataset}-{preset_name.value}")
            run = {**trained.to_dict(), "dataset": dataset, "dataset_info": data.info}
            report["runs"].append({**run, "parameter_counts": parameter_counts})
            write_report(out_dir, "quality", report, render_markdown(report))
    return write_report(out_dir, "quality", report, render_markdown(report))


def _row(label: str, metrics: dict[str, Any]) -> str:
    cells = " | ".join(f"{metrics[k]:.4f}" for k in COLUMNS)
    return f"| {label} | {cells} |"


def render_markdown(report: dict[str, Any]) -> str:
    """Render the report's summary tables as Markdown (every figure from ``report``)."""
    lines = [
        *markdown_header("Ranking quality (test split)", report),
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
            f"| {run['dataset']} / {run['preset']} | {run['n_parameters']:,} | {run['train_s']:.0f} | "
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
    return "\n".join(lines) + "\n"
