"""Storage helpers shared by jobs: existence checks through Hadoop's FileSystem (local or object
storage alike) and idempotent Delta writes that replace exactly the partitions a run owns."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DataType

from jobs.errors import AudienceError
from jobs.tables import Table


def _fs_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, hpath = _fs_path(spark, path)
    return bool(fs.exists(hpath))


def glob_paths(spark: SparkSession, pattern: str) -> list[str]:
    """Paths matching a Hadoop glob (local or object storage alike), sorted."""
    fs, hpath = _fs_path(spark, pattern)
    return sorted(str(status.getPath().toString()) for status in (fs.globStatus(hpath) or []))


def delta_exists(spark: SparkSession, path: str) -> bool:
    return path_exists(spark, f"{path}/_delta_log")


def delta_version(spark: SparkSession, path: str) -> int | None:
    """The table's latest commit version from its log's file names (a listing, no Spark job), or
    None when there is no table."""
    commits = glob_paths(spark, f"{path}/_delta_log/[0-9]*.json")
    return int(commits[-1].rsplit("/", 1)[-1].split(".")[0]) if commits else None


def _literal(value) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    if isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


def predicate(values: dict) -> str:
    return " AND ".join(
        f"{column} {'IN' if isinstance(value, (list, tuple)) else '='} {_literal(value)}"
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
    (
        frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate(values))
        .partitionBy(*table.partition_by)
        .save(table.path(warehouse))
    )
