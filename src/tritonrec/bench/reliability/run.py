"""``tritonrec bench reliability``: bad input, overload, faults, rollout and soak against the real local server.

One run serves an export on the bundled tritonserver (127.0.0.1; every load bounded in count and time) and
records, in ``reliability.json`` / ``reliability.md``:

1. fuzzing: hypothesis-generated malformed requests (``tritonrec.bench.reliability.fuzz``): cases, answers, crashes;
2. overload: a bounded queue refusing load; attempts per call without and with the client's retry budget;
3. a corrupt model loaded beside a serving one;
4. a rollout to version 2 and a rollback under load;
5. the Python stubs killed under load, found and reloaded by the watchdog;
6. a soak: RSS, descriptors and threads of server and client over steady load;
7. ``kill -9`` of tritonserver during a locust run, then a restart: unaccounted requests, recovery time.

``docs/reliability.md`` states each guarantee with the test that proves it and the figures recorded here.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from tritonrec.bench.reliability import faults
from tritonrec.bench.reliability.fuzz import fuzz_endpoint
from tritonrec.client.channel import open_stub
from tritonrec.client.options import ClientOptions
from tritonrec.errors import ConfigError
from tritonrec.export.manifest import read_export_spec
from tritonrec.measure.soak import soak
from tritonrec.measure.traffic import TrafficSpec, load_user_pool
from tritonrec.records import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.repository import VARIANTS, Batching, Variant, VariantName, build_repository
from tritonrec.serving.server import LocalTriton

__all__ = [
    "BOUNDED",
    "CORRUPT",
    "SERVED",
    "ReliabilitySettings",
    "kill9_scenario",
    "reliability_variants",
    "run_reliability_bench",
    "write_markdown",
]

SERVED = VariantName.CPU.value
BOUNDED = "ranker_cpu_bounded"
CORRUPT = "ranker_cpu_corrupt"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReliabilitySettings:
    """Sizes of each part (the defaults are the recorded run; tests use small ones).

    Attributes:
        fuzz_cases: generated requests.
        overload_s: seconds of overload per retry setting.
        soak_s: seconds of steady load.
        locust_s: seconds of the locust run that ``kill -9`` interrupts.
        users: distinct requests drawn from Beauty traffic.
    """

    fuzz_cases: int = 5000
    overload_s: float = 10.0
    soak_s: float = 600.0
    locust_s: float = 20.0
    users: int = 256

    def __post_init__(self) -> None:
        if min(self.fuzz_cases, self.users) < 1 or min(self.overload_s, self.soak_s, self.locust_s) <= 0:
            raise ConfigError("reliability settings must be positive")


def reliability_variants() -> list[Variant]:
    """``ranker_cpu``, a copy with a tiny bounded queue (overload), and a copy to corrupt (a failed load)."""
    base = VARIANTS[VariantName.CPU]
    # one request per execution and a queue of 4 with a 100 ms timeout: excess load is refused at once
    bounded = Batching(
        max_batch_size=1, preferred_batch_sizes=(), max_queue_delay_us=0, max_queue_size=4, queue_timeout_us=100_000
    )
    return [
        base,
        dataclasses.replace(base, name=BOUNDED, instances=1, batching=bounded),
        dataclasses.replace(base, name=CORRUPT),
    ]


def kill9_scenario(path: Path, seconds: float) -> Path:
    """A bounded locust scenario for the kill -9 run: 8 users with a short think time for ``seconds``."""
    path.write_text(
        f'name = "kill-9"\nmodel = "{SERVED}"\nthink_time_ms = [10, 30]\n[traffic]\n'
        'candidates = { low = 50, high = 200, distribution = "uniform" }\n'
        f'[shape]\nkind = "constant"\nusers = 8\nduration_s = {seconds:g}\nspawn_rate = 50\n'
        "[sla]\np99_ms = 60000\nmax_error_rate = 1.0\n"
    )
    return path


def run_reliability_bench(
    export_dir: Path, out_dir: Path, settings: ReliabilitySettings, *, command: str, progress: Progress = quiet
) -> Report:
    """Run every part against the export served locally; write ``reliability.json`` and ``reliability.md``."""
    spec = read_export_spec(export_dir / "model.onnx")
    users = load_user_pool(TrafficSpec(), history_len=spec.history_len).sample(settings.users)
    record: dict[str, Any] = {**new_record(command), "settings": asdict(settings)}
    with tempfile.TemporaryDirectory(prefix="tritonrec-reliability-") as work:
        repo = Path(work) / "repository"
        build_repository(repo, spec, reliability_variants(), export_dir=export_dir)
        (repo / CORRUPT / "1" / VARIANTS[VariantName.CPU].artifact).write_bytes(b"not an ONNX model\x00\xff" * 64)
        (repo / CORRUPT / "1" / (VARIANTS[VariantName.CPU].artifact + ".data")).unlink(missing_ok=True)
        server = LocalTriton(repo, log_file=Path(work) / "server.log", models=[SERVED, BOUNDED], startup_timeout_s=300)
        with server:
            progress(f"fuzzing {settings.fuzz_cases:,} requests ...")
            channel, stub = open_stub(server.grpc_url, ClientOptions())
            try:
                record["fuzz"] = fuzz_endpoint(
                    stub,
                    SERVED,
                    max_history=spec.history_len,
                    max_candidates=VARIANTS[VariantName.CPU].max_candidates,
                    n_items=spec.n_items,
                    cases_count=settings.fuzz_cases,
                    server_alive=server.is_running,
                ).to_dict()
            finally:
                channel.close()
            progress("overload against a bounded queue ...")
            record["overload"] = faults.overload(server.grpc_url, BOUNDED, users, duration_s=settings.overload_s)
            progress("loading a corrupt model beside a serving one ...")
            record["corrupt_model"] = faults.corrupt_model_load(server, SERVED, CORRUPT, users)
            progress("rolling out version 2 and back under load ...")
            record["rollout"] = faults.rollout(server, SERVED, users)
            progress("killing the Python stubs under load ...")
            record["stub_death"] = faults.stub_death(server, SERVED, users)
            progress(f"soaking for {settings.soak_s:g} s ...")
            pid = server.pid
            if pid is None:
                raise ConfigError("the server stopped before the soak")
            record["soak"] = soak(
                server.grpc_url, SERVED, users, psutil.Process(pid), duration_s=settings.soak_s, progress=progress
            )
            progress("kill -9 of tritonserver during a locust run ...")
            scenario = kill9_scenario(Path(work) / "kill9.toml", settings.locust_s)
            record["kill9"] = faults.kill9_during_locust(
                server, scenario, out_dir / "locust-kill9", kill_at_s=settings.locust_s / 3
            )
        record["server_log_errors"] = [line for line in server.log_tail(400).splitlines() if line.startswith("E")][-20:]
    return write_report(out_dir, "reliability", record, write_markdown(record))


def _soak_row(who: str, g: dict[str, Any]) -> str:
    return (
        f"| {who} | {g['rss_mib_after_warmup']:.1f} | {g['rss_mib_end']:.1f} | {g['rss_growth_pct']:+.2f}% "
        f"| {g['fds_growth']:+d} | {g['threads_growth']:+d} |"
    )


def write_markdown(record: dict[str, Any]) -> str:
    """Render the reliability record (every figure from it)."""
    fuzz, over, kill, stub, roll, corrupt, s = (
        record[k] for k in ("fuzz", "overload", "kill9", "stub_death", "rollout", "corrupt_model", "soak")
    )
    lines = markdown_header("Reliability: bad input, overload, faults, rollout and soak (local tritonserver)", record)
    lines += [
        "## Bad input (hypothesis fuzzing of raw gRPC requests)",
        "",
        f"{fuzz['cases']:,} cases; answers breaking the rules: {fuzz['unexpected_count']}; server down after a "
        f"burst: {fuzz['server_down_after_bursts']}; good requests after each burst: "
        f"{fuzz['good_after_burst']['ok']}/{fuzz['good_after_burst']['sent']}.",
        "",
        "| case: answer | count |",
        "|---|---|",
        *(f"| {k} | {v:,} |" for k, v in fuzz["outcomes"].items()),
        "",
        f"## Overload ({over['threads']} callers for {over['duration_s']:g} s against a queue of 4, 100 ms timeout)",
        "",
        "| retries | calls | outcomes | attempts per call | retries refused by the budget | accepted p50 / p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("no_budget", "retry_budget"):
        o = over[name]
        lat = o["accepted_latency_ms"]
        lines.append(
            f"| {name} | {o['calls']:,} | {o['outcomes']} | {o['attempts_per_call']} "
            f"| {o['retries_refused_by_budget']:,} | {lat['p50']} / {lat['p99']} |"
        )
    lines += [
        "",
        "## Faults",
        "",
        f"- **kill -9 of tritonserver** (and its stubs) {kill['kill_at_s']:g} s into a locust run, then a restart: "
        f"{kill['requests_issued']} requests started, {kill['requests_ended']} ended, {kill['failed_explicitly']} "
        f"of them with an explicit error, {kill['abandoned_at_stop']} abandoned by locust stopping its users at the "
        f"end of the run: **{kill['unaccounted']} unaccounted**; restarts that crashed: "
        f"{len(kill['failed_restarts'])}; "
        f"restart {kill['restart_s']} s, answering again {kill['recovery_s']} s after the kill.",
        f"- **Python stubs killed** ({stub['stubs_killed']}) under load: model readiness during the outage "
        f"{'200' if stub['model_ready_during_outage'] else 'not ready'}; the watchdog (a real inference every "
        f"{stub['watchdog_probe_interval_s']:g} s) found it {stub['detected_after_s']} s after the kill; requests "
        f"succeed again {stub['recovered_after_s']} s after the kill; outcomes after the kill: "
        f"{stub['outcomes_after_kill']}.",
        f"- **Corrupt model** loaded beside a serving one: `{(corrupt['load_error'] or 'loaded?!')[:300]}`; the "
        f"serving model's calls meanwhile: {corrupt['good_model_outcomes']}, ready after: "
        f"{corrupt['good_model_ready_after']}.",
        f"- **Rollout** to version 2 and back under load: {roll['failed']} failed calls; outcomes {roll['outcomes']}; "
        + "; ".join(f"{st['step']}: {st['load_s']} s, ready versions {st['ready_versions']}" for st in roll["steps"])
        + ".",
        "",
        f"## Soak ({s['duration_s']:g} s of steady load, {s['calls']:,} calls, judged after {s['warmup_s']:g} s)",
        "",
        "| process | RSS MiB after warm-up | RSS MiB at the end | growth | descriptors | threads |",
        "|---|---|---|---|---|---|",
        _soak_row("tritonserver + stubs", s["server"]),
        _soak_row("client (this process)", s["client"]),
        "",
    ]
    return "\n".join(lines)
