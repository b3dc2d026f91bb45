"""Storage helpers shared by jobs: existence checks through Arrow's file systems (local or object
storage alike; no JVM call, so Spark Connect sessions can use them), idempotent Delta writes that
replace exactly the partitions a run owns, and Delta commands in SQL (Delta's Python API needs a
plug-in under Spark Connect)."""

from __future__ import annotations

import datetime as dt
import functools
import os
import uuid

from fsspec.implementations.arrow import ArrowFSWrapper
from pyarrow import fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DataType

from jobs.errors import AudienceError
from jobs.tables import COLUMN_DOCS, Table


@functools.lru_cache(maxsize=8)
def _filesystem(scheme: str, bucket: str) -> ArrowFSWrapper:
    if scheme in ("", "file"):
        return ArrowFSWrapper(pafs.LocalFileSystem())
    if scheme in ("s3", "s3a") and os.environ.get("AWS_ENDPOINT_URL"):  # an S3 API store other than AWS
        return ArrowFSWrapper(pafs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"]))
    arrow_fs, _ = pafs.FileSystem.from_uri(f"{'s3' if scheme == 's3a' else scheme}://{bucket}")
    return ArrowFSWrapper(arrow_fs)


def _fs(path: str):
    """(fsspec view of the path's Arrow file system, the path inside it, the prefix of what it lists).
    Python-side, so it works over Spark Connect as well as in a classic session; `s3a://` is S3."""
    scheme, _, rest = str(path).rpartition("://")
    if scheme in ("", "file"):
        return _filesystem("", ""), os.path.abspath(rest), ""
    return _filesystem(scheme, rest.split("/", 1)[0]), rest, f"{scheme}://"


def path_exists(path: str) -> bool:
    fs, inner, _ = _fs(path)
    return bool(fs.exists(inner))


def glob_paths(pattern: str) -> list[str]:
    """Paths matching a glob (local or object storage alike), sorted."""
    fs, inner, prefix = _fs(pattern)
    return sorted(prefix + p for p in fs.glob(inner))


def delta_exists(path: str) -> bool:
    return path_exists(f"{path}/_delta_log")


def delta_version(path: str) -> int | None:
    """The table's latest commit version from its log's file names (a listing, no Spark job), or
    None when there is no table."""
    commits = glob_paths(f"{path}/_delta_log/[0-9]*.json")
    return int(commits[-1].rsplit("/", 1)[-1].split(".")[0]) if commits else None


def sql_literal(value) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(sql_literal(v) for v in value) + ")"
    if isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def delta_at(path) -> str:
    """The Delta table at `path` as SQL names it (a backtick in the path doubled, as SQL quotes it)."""
    return "delta.`" + str(path).replace("`", "``") + "`"


def predicate(values: dict) -> str:
    return " AND ".join(
        f"{column} {'IN' if isinstance(value, (list, tuple)) else '='} {sql_literal(value)}"
        for column, value in values.items()
    )


def check_schema(frame: DataFrame, table: Table) -> None:
    """Refuse a write whose columns or types differ from the table's declared schema (nullability
    aside): a renamed or retyped column is found where it is written, not by a reader later."""
    declared = {f.name: f.dataType.simpleString() for f in DataType.fromDDL(table.schema).fields}
    written = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    if written != declared:
        diff = sorted(
            f"{name}: declared {declared.get(name, 'absent')}, written {written.get(name, 'absent')}"
            for name in set(declared) | set(written)
            if declared.get(name) != written.get(name)
        )
        raise AudienceError(f"{table.qualified}: the frame does not match the declared schema ({'; '.join(diff)})")


def replace_partition(frame: DataFrame, table: Table, warehouse, values: dict) -> None:
    """Overwrite exactly the rows matching `values` (a run's own partitions), atomically, after
    checking the frame against the table's declared schema."""
    check_schema(frame, table)
    path = table.path(warehouse)
    if not _created(frame, table, path):
        writer = frame.write.format("delta").mode("overwrite").option("replaceWhere", predicate(values))
        writer.partitionBy(*table.partition_by).save(path)


def append(frame: DataFrame, table: Table, warehouse, merge_schema: bool = False) -> None:
    """Add rows (a log's), after checking the frame against the table's declared schema: one commit,
    cheaper than a partition replacement (no snapshot of the replaced rows to compute)."""
    check_schema(frame, table)
    path = table.path(warehouse)
    if not _created(frame, table, path):
        writer = frame.write.format("delta").mode("append").option("mergeSchema", str(merge_schema).lower())
        writer.partitionBy(*table.partition_by).save(path)


def _created(frame: DataFrame, table: Table, path: str) -> bool:
    """Create the table with the frame's rows when it does not exist yet (one commit, as a write):
    with its description, its columns' comments and its declared properties. False if it exists."""
    if delta_exists(path):
        return False
    from pyspark.sql import functions as F

    writer = (
        frame.select([F.col(c).alias(c, metadata={"comment": COLUMN_DOCS[c]}) for c in frame.columns])
        .writeTo(delta_at(path))
        .using("delta")
        .tableProperty("comment", table.doc)
    )
    if table.deletion_vectors:
        writer = writer.tableProperty("delta.enableDeletionVectors", "true")
    if table.partition_by:
        writer = writer.partitionedBy(*[F.col(c) for c in table.partition_by])
    writer.create()
    return True


def document(spark: SparkSession, table: Table, path: str, description: str | None) -> None:
    """Give a table created before its comments were declared (or since changed) its description
    and column comments: at most two commits, none when they match (`description`: the table's)."""
    if description != table.doc:
        spark.sql(f"COMMENT ON TABLE {delta_at(path)} IS {sql_literal(table.doc)}")
    stale = [
        f"{f.name} COMMENT {sql_literal(COLUMN_DOCS[f.name])}"
        for f in spark.read.format("delta").load(path).schema.fields
        if f.name in COLUMN_DOCS and f.metadata.get("comment") != COLUMN_DOCS[f.name]
    ]
    if stale:
        spark.sql(f"ALTER TABLE {delta_at(path)} ALTER COLUMN {', '.join(stale)}")


def merge_into(source: DataFrame, path: str, on: str, actions: str) -> None:
    """MERGE INTO the Delta table at `path` (alias t) from `source` (alias s) in SQL, so that a Spark
    Connect session (which lacks Delta's Python API without a plug-in) runs it like a classic one."""
    view = f"merge_source_{uuid.uuid4().hex}"
    source.createOrReplaceTempView(view)
    try:
        source.sparkSession.sql(f"MERGE INTO {delta_at(path)} AS t USING {view} AS s ON {on} {actions}")
    finally:
        source.sparkSession.catalog.dropTempView(view)


def restore(spark: SparkSession, path: str, version: int | None) -> None:
    """Put the table back at `version` (None: it was created afterwards, so empty it); a no-op when
    it is there already."""
    if version is None:
        spark.sql(f"DELETE FROM {delta_at(path)}")
    elif spark.sql(f"DESCRIBE HISTORY {delta_at(path)} LIMIT 1").first().version != version:
        spark.sql(f"RESTORE TABLE {delta_at(path)} TO VERSION AS OF {int(version)}")
