"""Weekly maintenance: retention of chat text and quarantined rows, OPTIMIZE, VACUUM.

VACUUM keeps `erasure_physical_days` of history, so files holding erased rows are physically
removed within that many days of the erasure and time travel cannot bring them back.
"""
from __future__ import annotations

import datetime as dt

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jobs import tables as t
from jobs.config import Config
from jobs.io import delta_exists
from jobs.progress import Progress

LARGE_TABLES = (t.CHAT_MESSAGES, t.ENGAGEMENT_EVENTS, t.CHAT_TOPICS, t.DAILY_SIGNALS, t.USER_INTERESTS,
                t.AUDIENCE_SEGMENTS)


def expire_text(spark, cfg: Config, today: dt.date) -> int:
    """Null chat text and search text in bronze older than chat_text_retention_days."""
    cutoff = today - dt.timedelta(days=cfg.retention["chat_text_retention_days"])
    changed = 0
    for table, column in ((t.CHAT_MESSAGES, "text"), (t.ENGAGEMENT_EVENTS, "query_text")):
        path = table.path(cfg.warehouse)
        if not delta_exists(spark, path):
            continue
        condition = (F.col("ingest_date") < F.lit(cutoff)) & F.col(column).isNotNull()
        changed += spark.read.format("delta").load(path).where(condition).count()
        DeltaTable.forPath(spark, path).update(condition, {column: F.lit(None).cast("string")})
    return changed


def expire_quarantine(spark, cfg: Config, today: dt.date) -> int:
    cutoff = today - dt.timedelta(days=cfg.retention["quarantine_retention_days"])
    path = t.QUARANTINE.path(cfg.warehouse)
    if not delta_exists(spark, path):
        return 0
    condition = F.col("ingest_date") < F.lit(cutoff)
    removed = spark.read.format("delta").load(path).where(condition).count()
    DeltaTable.forPath(spark, path).delete(condition)
    return removed


def run_maintenance(spark, cfg: Config, today: dt.date, progress: Progress) -> list[dict]:
    report = []
    with progress.stage("retention: chat text") as step:
        step.rows = expire_text(spark, cfg, today)
    report.append({"step": "chat text nulled", "rows": step.rows})
    with progress.stage("retention: quarantine") as step:
        step.rows = expire_quarantine(spark, cfg, today)
    report.append({"step": "quarantined rows removed", "rows": step.rows})
    for table in LARGE_TABLES:
        path = table.path(cfg.warehouse)
        if delta_exists(spark, path):
            with progress.stage(f"optimize {table.qualified}"):
                DeltaTable.forPath(spark, path).optimize().executeCompaction()
    hours = cfg.retention["erasure_physical_days"] * 24
    for table in t.ALL_TABLES:
        path = table.path(cfg.warehouse)
        if delta_exists(spark, path):
            with progress.stage(f"vacuum {table.qualified}"):
                DeltaTable.forPath(spark, path).vacuum(hours)
            report.append({"step": f"vacuum {table.qualified} ({hours} h)", "rows": None})
    return report
