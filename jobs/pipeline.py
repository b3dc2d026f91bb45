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
        as_of=(as_of or dt.datetime.now(dt.timezone.utc)).replace(tzinfo=None),
        tolerance_hours=cfg.timestamp_tolerance_hours,
        iso_countries=cfg.iso_countries,
        topic_ids=frozenset(cfg.topics),
        key=pseudonym_key(cfg.profile.allow_dev_pseudonym_key),
    )


def run_stage(spark, cfg: Config, stage: str, logical_date: dt.date, progress: Progress, run_id: str,
              regions: list[str] | None = None, as_of: dt.datetime | None = None):
    """One stage alone, as an Airflow task runs it (same code as run_date)."""
    from jobs import nightly
    params = ingest_params(cfg, logical_date, as_of)
    with progress.stage(stage if not regions else f"{stage} {','.join(regions)}") as step:
        if stage == "ingest":
            result = run_ingest(spark, cfg, params, run_id, progress)
            step.rows = sum(r["read"] for r in result)
        elif stage == "segments":
            result = nightly.stage_segments(spark, cfg, logical_date, run_id, params.as_of.replace(microsecond=0),
                                            regions)
            step.rows = result["published_members"]
        elif stage == "publish":
            result = nightly.publish(spark, cfg, logical_date)
            step.rows = sum(r["member_count"] for r in result if r["status"] == "published")
        else:
            result = {"privacy": nightly.stage_privacy, "signals": nightly.stage_signals,
                      "interests": nightly.stage_interests}[stage](spark, cfg, logical_date, run_id)
    return result


def run_date(spark, cfg: Config, logical_date: dt.date, progress: Progress, run_id: str | None = None,
             as_of: dt.datetime | None = None) -> dict:
    """Run every stage that exists for one date; returns per-stage results."""
    from jobs import nightly
    run_id = run_id or make_run_id(logical_date)
    params = ingest_params(cfg, logical_date, as_of)
    results = {"run_id": run_id, "ingest": run_ingest(spark, cfg, params, run_id, progress)}
    for name, stage in (("privacy", nightly.stage_privacy), ("signals", nightly.stage_signals),
                        ("interests", nightly.stage_interests)):
        with progress.stage(name) as step:
            results[name] = stage(spark, cfg, logical_date, run_id)
            step.rows = next(iter(v for v in results[name].values() if isinstance(v, int)), None)
            step.detail = " ".join(f"{k}={v:,}" for k, v in results[name].items())
    with progress.stage("segments") as step:
        staged = nightly.stage_segments(spark, cfg, logical_date, run_id, params.as_of.replace(microsecond=0))
        step.rows = staged["published_members"]
    with progress.stage("publish") as step:
        results["segments"] = nightly.publish(spark, cfg, logical_date)
        step.rows = sum(r["member_count"] for r in results["segments"] if r["status"] == "published")
    return results
