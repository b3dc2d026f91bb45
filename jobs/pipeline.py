"""The nightly flow for one logical date, as the command line and Airflow tasks call it."""
from __future__ import annotations

import datetime as dt
import uuid

from jobs.bronze.ingest import IngestParams, run_ingest
from jobs.config import Config
from jobs.privacy import pseudonym_key
from jobs.progress import Progress


def make_run_id(logical_date: dt.date) -> str:
    return f"{logical_date.isoformat()}-{uuid.uuid4().hex[:8]}"


def ingest_params(cfg: Config, logical_date: dt.date, as_of: dt.datetime | None = None) -> IngestParams:
    return IngestParams(
        logical_date=logical_date,
        as_of=(as_of or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc),
        tolerance_hours=cfg.timestamp_tolerance_hours,
        iso_countries=cfg.iso_countries,
        topic_ids=frozenset(cfg.topics),
        sensitive_topic_ids=frozenset(x for x, topic in cfg.topics.items() if topic.sensitive),
        key=pseudonym_key(cfg.profile.allow_dev_pseudonym_key),
    )


STAGES = ("ingest", "privacy", "signals", "interests", "segments", "publish")


def _work(spark, cfg: Config, stage: str, logical_date: dt.date, progress: Progress, run_id: str,
          regions: list[str] | None, as_of: dt.datetime | None, step):
    from jobs import nightly
    params = ingest_params(cfg, logical_date, as_of)
    if stage == "ingest":
        result = run_ingest(spark, cfg, params, run_id, progress)
        step.rows = sum(r["read"] for r in result)
    elif stage == "segments":
        result = nightly.stage_segments(spark, cfg, logical_date, run_id, params.as_of.replace(microsecond=0),
                                        regions)
        step.rows = result["published_members"]
    elif stage == "publish":
        result = nightly.publish(spark, cfg, logical_date, run_id)
        step.rows = sum(r["member_count"] for r in result if r["status"] == "published")
    else:
        result = {"privacy": nightly.stage_privacy, "signals": nightly.stage_signals,
                  "interests": nightly.stage_interests}[stage](spark, cfg, logical_date, run_id)
        step.rows = next(iter(v for v in result.values() if isinstance(v, int)), None)
        step.detail = " ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in result.items())
    return result


def _gate(spark, cfg: Config, stage: str, logical_date: dt.date, progress: Progress, run_id: str) -> None:
    from jobs import quality
    with progress.stage(f"gate {stage}") as step:
        results = quality.gate(spark, cfg, logical_date, run_id, stage, progress)
        step.detail = f"{len(results)} expectations, {sum(not r.success for r in results)} warnings"


def run_stage(spark, cfg: Config, stage: str, logical_date: dt.date, progress: Progress, run_id: str,
              regions: list[str] | None = None, as_of: dt.datetime | None = None):
    """One stage and its quality gate, as an Airflow task runs it (run_date runs them all).
    The gate validates what the stage wrote before any later stage reads it; publish's gate
    validates the staged segments before they become visible."""
    from jobs.quality import GATES, QualityGateError
    if stage == "publish":
        from jobs.nightly import require_staged
        require_staged(spark, cfg, logical_date)
        _gate(spark, cfg, stage, logical_date, progress, run_id)
    versions = _versions(spark, cfg, GATES[stage]) if stage in ROLLBACK_ON_FAILED_GATE else {}
    with progress.stage(stage if not regions else f"{stage} {','.join(regions)}") as step:
        result = _work(spark, cfg, stage, logical_date, progress, run_id, regions, as_of, step)
    if stage in GATES and stage != "publish":
        try:
            _gate(spark, cfg, stage, logical_date, progress, run_id)
        except QualityGateError as exc:
            if stage in ROLLBACK_ON_FAILED_GATE:
                _roll_back(spark, cfg, versions)
                raise QualityGateError(f"{exc}; the {stage} stage's writes were rolled back") from None
            raise
    return result


# Stages whose failed gate restores their tables to the versions before the stage, so that rows
# that failed validation are not left for analysts. Not privacy: restoring user_state would bring
# back rows tonight's erasures deleted from earlier partitions.
ROLLBACK_ON_FAILED_GATE = ("ingest", "signals", "interests")


def _versions(spark, cfg: Config, tables) -> dict:
    from delta.tables import DeltaTable
    from jobs.io import delta_exists
    return {table: (DeltaTable.forPath(spark, table.path(cfg.warehouse)).history(1).first().version
                    if delta_exists(spark, table.path(cfg.warehouse)) else None) for table in tables}


def _roll_back(spark, cfg: Config, versions: dict) -> None:
    from delta.tables import DeltaTable
    for table, version in versions.items():
        current = DeltaTable.forPath(spark, table.path(cfg.warehouse))
        if version is None:  # created by this stage: nothing earlier to restore, so empty it
            current.delete()
        elif current.history(1).first().version != version:
            current.restoreToVersion(version)


def run_date(spark, cfg: Config, logical_date: dt.date, progress: Progress, run_id: str | None = None,
             as_of: dt.datetime | None = None) -> dict:
    """Run every stage for one date, in order; returns per-stage results."""
    run_id = run_id or make_run_id(logical_date)
    results = {"run_id": run_id}
    for stage in STAGES:
        results[stage] = run_stage(spark, cfg, stage, logical_date, progress, run_id, as_of=as_of)
    results["staged"], results["segments"] = results["segments"], results.pop("publish")
    return results
