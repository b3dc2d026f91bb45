"""Runs the registry's stages (jobs/registry.py) for one logical date, as the command line and the
Airflow tasks call it: each stage, then its quality gate before any later stage reads what it wrote;
publish's gate validates the staged segments before they become visible."""

from __future__ import annotations

import datetime as dt

from jobs.config import Config
from jobs.context import RunContext
from jobs.io import append, delta_version, restore
from jobs.progress import Progress
from jobs.quality.gates import QualityGateError, gate
from jobs.registry import BY_NAME, STAGES, Stage
from jobs.tables import STAGE_RUNS


def _gate(ctx: RunContext, stage: Stage) -> None:
    with ctx.progress.stage(f"gate {stage.name}") as step:
        results = gate(ctx, stage.name, stage.gate, staged=stage.gate_first)
        step.detail = f"{len(results)} expectations, {sum(not r.success for r in results)} warnings"


def _detail(result: dict) -> str:
    return " ".join(
        f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in result.items() if isinstance(v, (int, str))
    )


def run_stage(ctx: RunContext, name: str, durations: list | None = None) -> dict:
    """One stage and its quality gate, as an Airflow task runs it (run_date runs them all). Its
    duration goes to quality.stage_runs, or to `durations` for the caller to record with others."""
    stage = BY_NAME[name]
    if stage.gate_first:
        _gate(ctx, stage)
    versions = _versions(ctx, stage.rollback)
    label = name if not ctx.regions else f"{name} {','.join(ctx.regions)}"
    with ctx.progress.stage(label) as step:
        result = stage.run(ctx)
        step.rows, step.detail = result.get(stage.rows), _detail(result)
    row = _duration(ctx, label, ctx.progress.finished[-1])
    if stage.gate and not stage.gate_first:
        try:
            _gate(ctx, stage)
        except QualityGateError as exc:
            if stage.rollback:
                _roll_back(ctx, versions)
                raise QualityGateError(f"{exc}; the {name} stage's writes were rolled back") from None
            raise
    # once its gate passed: a stage stopped by its gate (its writes rolled back) did not run
    if durations is None:
        _record(ctx, [row])
    else:
        durations.append(row)
    return result


def _duration(ctx: RunContext, label: str, step: dict) -> tuple:
    started = dt.datetime.fromtimestamp(step["started_at"], dt.timezone.utc)
    return ctx.run_id, ctx.logical_date, label, started, step["seconds"], step["rows"]


def _record(ctx: RunContext, rows: list[tuple]) -> None:
    append(ctx.spark.createDataFrame(rows, STAGE_RUNS.schema), STAGE_RUNS, ctx.cfg.warehouse)


def _versions(ctx: RunContext, tables) -> dict:
    return {table: delta_version(table.path(ctx.cfg.warehouse)) for table in tables}


def _roll_back(ctx: RunContext, versions: dict) -> None:
    for table, version in versions.items():
        if not ctx.exists(table):
            continue
        restore(ctx.spark, table.path(ctx.cfg.warehouse), version)


def run_date(
    spark,
    cfg: Config,
    logical_date: dt.date,
    progress: Progress | None = None,
    run_id: str | None = None,
    as_of: dt.datetime | None = None,
) -> dict:
    """Run every stage for one date, in order; returns per-stage results."""
    ctx = RunContext.start(spark, cfg, logical_date, progress, run_id, as_of)
    results = {"run_id": ctx.run_id}
    durations: list[tuple] = []
    for stage in STAGES:
        results[stage.name] = run_stage(ctx, stage.name, durations)
    _record(ctx, durations)  # one commit for the night's durations (a failed night records none)
    results["staged"], results["segments"] = results["segments"], results.pop("publish")["catalog"]
    return results
