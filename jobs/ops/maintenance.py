"""Daily maintenance: retention of chat text and quarantined rows, physical purge of erased and
expired rows (deletion vectors PURGEd, Change Data Feed kept off, VACUUM), OPTIMIZE.

Erasures and retention delete rows logically; the bytes stay in Parquet files (and, with deletion
vectors, in files still referenced) until REORG ... APPLY (PURGE) rewrites those files and VACUUM
removes unreferenced files older than `vacuum_retention_hours`. Each table's
`delta.deletedFileRetentionDuration` is set to that window, so Delta's retention safety check can
stay on (only the test profile turns it off). Time travel to a purged version then fails.
"""

from __future__ import annotations

import datetime as dt

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jobs import tables as t
from jobs.config import Config
from jobs.context import COMMIT_METADATA
from jobs.io import delta_at, delta_exists, document
from jobs.progress import Progress

LARGE_TABLES = (
    t.CHAT_MESSAGES,
    t.ENGAGEMENT_EVENTS,
    t.CHAT_TOPICS,
    t.DAILY_SIGNALS,
    t.USER_INTERESTS,
    t.AUDIENCE_SEGMENTS,
)


def expire_text(spark, cfg: Config, today: dt.date) -> int:
    """Null chat text and search text in bronze once it has been kept chat_text_retention_days
    (ingested on day X: kept X .. X+N-1, removed on X+N)."""
    cutoff = today - dt.timedelta(days=cfg.retention.chat_text_retention_days)
    changed = 0
    for table, column in ((t.CHAT_MESSAGES, "text"), (t.ENGAGEMENT_EVENTS, "query_text")):
        path = table.path(cfg.warehouse)
        if not delta_exists(path):
            continue
        condition = (F.col("ingest_date") <= F.lit(cutoff)) & F.col(column).isNotNull()
        changed += spark.read.format("delta").load(path).where(condition).count()
        DeltaTable.forPath(spark, path).update(condition, {column: F.lit(None).cast("string")})
    return changed


def expire_quarantine(spark, cfg: Config, today: dt.date) -> int:
    cutoff = today - dt.timedelta(days=cfg.retention.quarantine_retention_days)
    path = t.QUARANTINE.path(cfg.warehouse)
    if not delta_exists(path):
        return 0
    condition = F.col("ingest_date") <= F.lit(cutoff)
    removed = spark.read.format("delta").load(path).where(condition).count()
    DeltaTable.forPath(spark, path).delete(condition)
    return removed


def purge(spark, cfg: Config, table: t.Table) -> None:
    """Physically remove what is no longer in the table: PURGE deletion vectors, CDF off, VACUUM
    (and bring its comments up to date with the declaration)."""
    path = table.path(cfg.warehouse)
    hours = cfg.retention.vacuum_retention_hours
    detail = DeltaTable.forPath(spark, path).detail().first()
    document(spark, table, path, detail.description)
    properties = detail.properties
    settings = {"delta.deletedFileRetentionDuration": f"interval {hours} hours"}
    if properties.get("delta.enableChangeDataFeed") == "true":
        settings["delta.enableChangeDataFeed"] = "false"  # its _change_data files go with VACUUM
    if table.deletion_vectors:  # a table created before its declaration asked for them
        settings["delta.enableDeletionVectors"] = "true"
    changed = {k: v for k, v in settings.items() if properties.get(k) != v}
    if changed:
        spark.sql(
            f"ALTER TABLE {delta_at(path)} SET TBLPROPERTIES ("
            + ", ".join(f"'{k}' = '{v}'" for k, v in changed.items())
            + ")"
        )
    if properties.get("delta.enableDeletionVectors") == "true":
        spark.sql(f"REORG TABLE {delta_at(path)} APPLY (PURGE)")
    DeltaTable.forPath(spark, path).vacuum(hours)


def mark_purged(spark, cfg: Config, today: dt.date, vacuumed_before: dt.datetime) -> int:
    """Erasures whose deletes were committed before this pass's VACUUM cut-off (its start minus
    vacuum_retention_hours) are physically gone after it: their files were old enough to go."""
    path = t.ERASURE_LOG.path(cfg.warehouse)
    if not delta_exists(path):
        return 0
    condition = F.col("purged_on").isNull() & (F.col("applied_at") < F.lit(vacuumed_before))
    count = spark.read.format("delta").load(path).where(condition).count()
    DeltaTable.forPath(spark, path).update(condition, {"purged_on": F.lit(today)})
    return count


def run_maintenance(spark, cfg: Config, today: dt.date, progress: Progress) -> list[dict]:
    spark.conf.set(COMMIT_METADATA, f"audience maintenance {today}")
    report = []
    with progress.stage("retention: chat text") as step:
        step.rows = expire_text(spark, cfg, today)
    report.append({"step": "chat text nulled", "rows": step.rows})
    with progress.stage("retention: quarantine") as step:
        step.rows = expire_quarantine(spark, cfg, today)
    report.append({"step": "quarantined rows removed", "rows": step.rows})
    for table in LARGE_TABLES:
        path = table.path(cfg.warehouse)
        if delta_exists(path):
            with progress.stage(f"optimize {table.qualified}"):
                DeltaTable.forPath(spark, path).optimize().executeCompaction()
    hours = cfg.retention.vacuum_retention_hours
    vacuumed_before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours)
    for table in t.ALL_TABLES:
        if delta_exists(table.path(cfg.warehouse)):
            with progress.stage(f"purge {table.qualified}"):
                purge(spark, cfg, table)
    report.append({"step": f"deletion vectors purged, VACUUM {hours} h", "rows": None})
    with progress.stage("erasure log: purge dates") as step:
        step.rows = mark_purged(spark, cfg, today, vacuumed_before)
    report.append({"step": "erasure requests marked purged", "rows": step.rows})
    return report
