"""SparkSession factory driven by conf/: local[*] by default, any cluster by profile, or a Spark
Connect session of a warm engine (jobs/engine.py)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from jobs import REPO_ROOT
from jobs.config import Config
from jobs.errors import AudienceError
from jobs.tables import ALL_TABLES, under

log = logging.getLogger(__name__)
JARS_DIR = Path(os.environ.get("AUDIENCE_JARS_DIR", REPO_ROOT / "jars"))
JAR_PREFIXES = ("delta-spark_", "delta-storage-")
LOG4J = REPO_ROOT / "conf" / "log4j2.properties"
# Spark redacts matching parts of plans and explain output. The HMAC key enters plans only as the
# 64-byte padded binary literal, so that literal is what must never reach logs or the UI.
REDACTION_REGEX = r"(?i)X'[0-9A-F]{128}'|audience[_.]pseudonym[_.]key[^,;]*"


def delta_jars() -> list[str]:
    found = {p: sorted(JARS_DIR.glob(f"{p}*.jar")) for p in JAR_PREFIXES}
    missing = [p.rstrip("_-") for p, jars in found.items() if not jars]
    if missing:
        raise AudienceError(f"Delta jars missing in {JARS_DIR} ({', '.join(missing)}): run `make jars`")
    return [str(jars[-1]) for jars in found.values()]


def profile_jars(cfg: Config) -> list[str]:
    """The profile's extra jars (globs under the repository); a glob matching nothing is an error."""
    found = []
    for pattern in cfg.profile.jars:
        jars = sorted(REPO_ROOT.glob(pattern))
        if not jars:
            raise AudienceError(
                f"profile {cfg.profile.name}: no jar matches {pattern} (the object-store connector: `make s3-jars`)"
            )
        found += [str(j) for j in jars]
    return found


def check_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return
    if not shutil.which("java"):
        raise AudienceError("Java 17 is required: no `java` on PATH and JAVA_HOME is not set")


def build_spark(
    cfg: Config, app_name: str = "audience", engine: str | None = None, master: str | None = None, extra=None
):
    """Start (or reuse) the session for cfg's profile with Delta from local jars; or, given an
    engine's Spark Connect URL (`sc://host:port`, see jobs/engine.py), a session of that engine,
    whose JVM and settings are the engine's."""
    if engine:
        from pyspark.sql import SparkSession

        from jobs.engine import client_url

        return SparkSession.builder.remote(client_url(engine)).getOrCreate()
    check_java()
    jars = delta_jars() + profile_jars(cfg)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    # Under spark-submit (Airflow's SparkSubmitOperator) the JVM is already up: its --master and
    # --jars come from the `spark_default` connection and the operator, not from the profile.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    local = cfg.profile.master.startswith("local")
    builder = SparkSession.builder.appName(app_name)
    if not submitted:
        builder = builder.master(master or cfg.profile.master)
    builder = (
        builder.config("spark.jars", ",".join(jars))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", under(cfg.warehouse, "_catalog"))
        .config("spark.sql.shuffle.partitions", str(cfg.profile.shuffle_partitions))
        # File listing (VACUUM, plain Parquet reads) runs as a job of this many tasks (default 10,000:
        # 20 s per VACUUM of a tiny table in local mode).
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", str(cfg.profile.shuffle_partitions))
        # Compiled expression code is cached by its source, 100 classes by default: fewer than one
        # night compiles (about 1,100 at 3,000 messages), so a warm JVM (the run's engine, a
        # backfill, the test suite) compiled nearly all of them again every night. With 2,000, a
        # second night in the same session compiles about 390 (the code that inlines its date).
        .config("spark.sql.codegen.cache.maxEntries", "2000")
        # VACUUM START/END commits in each table's history: the audit trail of physical purges.
        .config("spark.databricks.delta.vacuum.logging.enabled", "true")
        .config("spark.databricks.delta.retentionDurationCheck.enabled", str(cfg.profile.retention_check).lower())
        # New tables keep no per-column statistics in the transaction log, which would otherwise keep
        # min/max user keys, ids and text prefixes in _delta_log after the rows are erased. Deletion
        # vectors: only on the tables that declare them (jobs/tables.py), PURGEd by maintenance.
        .config("spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols", "0")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.redaction.regex", r"(?i)secret|password|token|access[.]?key|pseudonym")
        .config("spark.sql.redaction.string.regex", REDACTION_REGEX)
        .config("spark.driver.extraJavaOptions", f"-Dlog4j.configurationFile={LOG4J} -Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
    )
    if local:
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.driver.memory", os.environ.get("AUDIENCE_DRIVER_MEMORY", "4g"))
            .config("spark.databricks.delta.snapshotPartitions", "2")
        )
    for key, value in {**cfg.spark_conf, **(extra or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def register_tables(spark, cfg: Config) -> list[str]:
    """Register every existing Delta table as `<layer>.<table>` in this session's catalog."""
    from jobs.io import delta_exists  # local or object storage alike

    registered = []
    for table in ALL_TABLES:
        path = table.path(cfg.warehouse)
        if not delta_exists(path):
            continue
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {table.layer}")
        spark.sql(f"CREATE TABLE IF NOT EXISTS {table.qualified} USING DELTA LOCATION '{path}'")
        registered.append(table.qualified)
    return registered
