"""Storage helpers shared by jobs: existence checks through Hadoop's FileSystem (local or object
storage alike) and idempotent Delta writes that replace exactly the partitions a run owns."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession

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


def replace_partition(frame: DataFrame, table: Table, warehouse, values: dict) -> None:
    """Overwrite exactly the rows matching `values` (a run's own partitions), atomically."""
    (
        frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate(values))
        .partitionBy(*table.partition_by)
        .save(table.path(warehouse))
    )
