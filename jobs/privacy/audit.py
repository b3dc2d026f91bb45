"""Erasure audit: is anything of an erasure request past its deadline still stored?

It does not trust the erasure: it does not reuse its clauses. For every request whose physical
deadline (received_date + erasure_physical_days) has passed it looks for
- the erased account's user key and the erased message or conversation id in *every string column*
  of *every table found on disk* under the warehouse (declared in jobs/tables.py or not), and as a
  token inside declared free-text / raw-record columns and the transaction log (`_delta_log`);
- an `all_chats` user's key on the declared chat rows of a table;
- any erasing user's key in the snapshots of derived tables (interests, segments) before the request.
A message or conversation id stays allowed on rows keyed by another user (a user erases only their
own chats). Every Parquet file under a table is read as plain Parquet, so files Delta no longer
references and rows hidden by deletion vectors count too; a table with Change Data Feed on is
reported as well. The erasure log and the requests table keep the request itself (the record).
"""

from __future__ import annotations

import datetime as dt

from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import tables as t
from jobs.config import Config
from jobs.io import delta_exists, glob_paths, path_exists

ANY, CHAT, DERIVED = "anywhere", "chat rows", "derived snapshots"
# Separators around an id or key inside JSON records, log lines and text.
TOKEN_SPLIT = r"""[\s"'{}\[\](),:;=\\]+"""
NEEDLES_SCHEMA = "scope string, value string, owner string, received_date date, kind string"


def due_needles(spark, cfg: Config, today: dt.date) -> DataFrame | None:
    """What to look for, per request past its physical deadline on `today` (see the module doc)."""
    path = t.ERASURE_REQUESTS.path(cfg.warehouse)
    if not delta_exists(path):
        return None
    deadline = today - dt.timedelta(days=cfg.retention.erasure_physical_days)
    r = (
        spark.read.format("delta")
        .load(path)
        .where(F.col("ingest_date") <= F.lit(deadline))
        .select("scope", "user_key", "target_id", F.col("ingest_date").alias("received_date"))
    )
    ids = r.where(F.col("scope").isin("message", "conversation"))
    parts = [
        r.where(F.col("scope") == "account").select(
            "scope",
            F.col("user_key").alias("value"),
            F.lit(None).cast("string").alias("owner"),
            "received_date",
            F.lit(ANY).alias("kind"),
        ),
        ids.select(
            "scope",
            F.col("target_id").alias("value"),
            F.col("user_key").alias("owner"),
            "received_date",
            F.lit(ANY).alias("kind"),
        ),
        r.where(F.col("scope") == "all_chats").select(
            "scope",
            F.col("user_key").alias("value"),
            F.lit(None).cast("string").alias("owner"),
            "received_date",
            F.lit(CHAT).alias("kind"),
        ),
        r.select(
            "scope",
            F.col("user_key").alias("value"),
            F.lit(None).cast("string").alias("owner"),
            "received_date",
            F.lit(DERIVED).alias("kind"),
        ),
    ]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out.where(F.col("value").isNotNull()).distinct()


def table_dirs(warehouse) -> list[tuple[str, str, t.Table | None]]:
    """(path, name, declaration or None) of every Delta table under the warehouse."""
    root = t.under(warehouse)
    declared = {(x.layer, x.name): x for x in t.ALL_TABLES}
    found = []
    for log in glob_paths(f"{root}/*/*/_delta_log"):
        layer, name = log.rstrip("/").split("/")[-3:-1]
        found.append((log.rstrip("/")[: -len("/_delta_log")], f"{layer}.{name}", declared.get((layer, name))))
    return found


def _tokens_of(column: str, cell):
    return lambda token: cell(column, token)  # one argument: Spark's transform passes no index


def _hits(frame: DataFrame, table: t.Table | None, needles: DataFrame) -> DataFrame:
    """scope, column of each thing in `frame` that a due request erased (one row per hit)."""
    strings = [f.name for f in frame.schema if isinstance(f.dataType, T.StringType)]
    key = table.user_key if table else ("user_key" if "user_key" in frame.columns else None)
    owner = F.col(key) if key in frame.columns else F.lit(None).cast("string")

    # Every string column's value, and the tokens of free text and raw records, as (column, value).
    def cell(column: str, value):
        return F.struct(F.lit(column).alias("column"), value.alias("value"))

    cells = [F.array(cell(c, F.col(c))) for c in strings]
    cells += [
        F.transform(F.split(F.col(c), TOKEN_SPLIT), _tokens_of(c, cell)) for c in (table.free_text if table else ())
    ]
    exploded = frame.select(owner.alias("_owner"), F.explode(F.flatten(F.array(*cells))).alias("cell"))
    anywhere = F.broadcast(needles.where(F.col("kind") == ANY).select("scope", "value", "owner"))
    # An id on a row keyed by another user is that user's data, not the erased one.
    found = [
        exploded.join(anywhere, F.col("cell.value") == F.col("value"), "inner")
        .where(F.col("owner").isNull() | F.col("_owner").isNull() | (F.col("_owner") == F.col("owner")))
        .select("scope", F.col("cell.column").alias("column"))
    ]
    if table and table.user_key and table.chat_rows:
        chat = F.broadcast(needles.where(F.col("kind") == CHAT).select("scope", F.col("value").alias("_v")))
        hits = frame.alias("t").join(chat, F.col(f"t.{key}") == F.col("_v"), "inner")
        if table.chat_rows != t.ALL_ROWS:
            hits = hits.where(F.expr(table.chat_rows))
        found.append(hits.select("scope", F.lit(key).alias("column")))
    if table and table.derived:
        derived = F.broadcast(
            needles.where(F.col("kind") == DERIVED).select("scope", F.col("value").alias("_v"), "received_date")
        )
        found.append(
            frame.join(derived, F.col(key) == F.col("_v"), "inner")
            .where(F.col(table.partition_by[0]) < F.col("received_date"))
            .select("scope", F.lit(key).alias("column"))
        )
    out = found[0]
    for more in found[1:]:
        out = out.unionByName(more)
    return out


def _log_hits(spark, path: str, needles: DataFrame) -> DataFrame:
    lines = spark.read.text(f"{path}/_delta_log").select(F.explode(F.split("value", TOKEN_SPLIT)).alias("_token"))
    return lines.join(
        F.broadcast(needles.where(F.col("kind") == ANY)), F.col("_token") == F.col("value"), "inner"
    ).select("scope", F.lit("").alias("column"))


def audit(spark, cfg: Config, today: dt.date, progress=None) -> tuple[int, list[dict]]:
    """(number of due requests, violations); a violation names table, where, column, scope, rows."""
    needles = due_needles(spark, cfg, today)
    if needles is None:
        return 0, []
    needles = needles.localCheckpoint(eager=True)
    n_due = needles.where(F.col("kind") == DERIVED).count()  # one per request
    violations = []
    for path, name, table in table_dirs(cfg.warehouse):
        properties = DeltaTable.forPath(spark, path).detail().first().properties
        if properties.get("delta.enableChangeDataFeed") == "true":
            violations.append(
                {
                    "table": name,
                    "where": "table property",
                    "column": "",
                    "scope": "",
                    "rows": None,
                    "problem": "change data feed is on",
                }
            )
        if not n_due or (table and table.erasure_record):
            continue
        current = spark.read.format("delta").load(path)
        # Every Parquet file under the table, referenced or not, with the table's schema (partition
        # columns from the folder names), change-data files included.
        on_disk = spark.read.schema(current.schema).option("recursiveFileLookup", "false").parquet(path)
        sources = [("current version", current), ("files on disk", on_disk)]
        if path_exists(f"{path}/_change_data"):
            sources.append(
                (
                    "change data files",
                    spark.read.schema(current.schema)
                    .option("recursiveFileLookup", "true")
                    .parquet(f"{path}/_change_data"),
                )
            )
        found = _log_hits(spark, path, needles).select(F.lit("transaction log").alias("where"), "*")
        for where, frame in sources:
            found = found.unionByName(_hits(frame, table, needles).select(F.lit(where).alias("where"), "*"))
        for r in found.groupBy("where", "column", "scope").count().orderBy("where", "column", "scope").collect():
            violations.append(
                {
                    "table": name,
                    "where": r.where,
                    "column": r.column,
                    "scope": r.scope,
                    "rows": r["count"],
                    "problem": "erased data still stored",
                }
            )
        if progress:
            progress.note(f"audited {name}")
    needles.unpersist()
    return n_due, violations
