"""Erasure audit: is anything of an erasure request past its deadline still stored?

Checks, for every request whose physical deadline (received_date + erasure_physical_days) has
passed, the current version of every table holding user data and every Parquet file still on disk
under those tables (read as plain Parquet, so files Delta no longer references, rows hidden by
deletion vectors and change-data files count too). A table with Change Data Feed on is reported
as well. The erasure log and the requests table keep the request itself (the record of erasure).
"""
from __future__ import annotations

import datetime as dt

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, functions as F

from jobs import tables as t
from jobs.config import Config
from jobs.io import delta_exists, path_exists
from jobs.privacy_requests import MATCHES, REBUILT_TONIGHT, targets

ALL_SCOPES = ("message", "conversation", "all_chats", "account")


def due_requests(spark, cfg: Config, today: dt.date) -> DataFrame | None:
    """scope, value, received_date of the requests past their physical deadline on `today`."""
    path = t.ERASURE_REQUESTS.path(cfg.warehouse)
    if not delta_exists(spark, path):
        return None
    deadline = today - dt.timedelta(days=cfg.retention["erasure_physical_days"])
    requests = spark.read.format("delta").load(path).where(F.col("ingest_date") <= F.lit(deadline))
    return (targets(requests).join(requests.select("request_id", F.col("ingest_date").alias("received_date")),
                                   "request_id")
            .where(F.col("value").isNotNull()).select("scope", "value", "received_date"))


def _hits(frame: DataFrame, table: t.Table, due: DataFrame) -> list[tuple[str, str, int]]:
    """(column, scope, rows) of `frame` that a due request covers (MATCHES says where each scope lands)."""
    found = []
    for column, scopes in MATCHES[table]:
        if column not in frame.columns:
            continue
        wanted = F.broadcast(due.where(F.col("scope").isin(*scopes))
                             .select(F.col("value").alias(column), "scope", "received_date"))
        hits = frame.join(wanted, on=column, how="inner")
        if table is t.QUARANTINE and scopes == ("message",):
            hits = hits.where(F.col("dataset") == "chat_messages")
        if table in REBUILT_TONIGHT:
            # Snapshots from the request's night on are rebuilt from cleaned data; only an account
            # erasure removes the user from them too.
            hits = hits.where((F.col("scope") == "account") | (F.col(REBUILT_TONIGHT[table]) < F.col("received_date")))
        found += [(column, r.scope, r["count"]) for r in hits.groupBy("scope").count().collect()]
    return found


def audit(spark, cfg: Config, today: dt.date, progress=None) -> tuple[int, list[dict]]:
    """(number of due requests, violations); a violation names table, where, column, scope, rows."""
    due = due_requests(spark, cfg, today)
    if due is None:
        return 0, []
    due = due.cache()
    n_due = due.count()
    violations = []
    for table in MATCHES:
        path = table.path(cfg.warehouse)
        if not delta_exists(spark, path):
            continue
        current = spark.read.format("delta").load(path)
        properties = DeltaTable.forPath(spark, path).detail().first().properties
        if properties.get("delta.enableChangeDataFeed") == "true":
            violations.append({"table": table.qualified, "where": "table property", "column": "",
                               "scope": "", "rows": None, "problem": "change data feed is on"})
        if not n_due:
            continue
        # Every Parquet file under the table, referenced or not, read with the table's schema
        # (partition columns come from the folder names; a table without files reads empty).
        sources = [("current version", current), ("files on disk", spark.read.schema(current.schema).parquet(path))]
        if path_exists(spark, f"{path}/_change_data"):
            sources.append(("change data files", spark.read.schema(current.schema)
                            .option("recursiveFileLookup", "true").parquet(f"{path}/_change_data")))
        for where, frame in sources:
            for column, scope, rows in _hits(frame, table, due):
                violations.append({"table": table.qualified, "where": where, "column": column, "scope": scope,
                                   "rows": rows, "problem": "erased data still stored"})
        if progress:
            progress.note(f"audited {table.qualified}")
    due.unpersist()
    return n_due, violations
