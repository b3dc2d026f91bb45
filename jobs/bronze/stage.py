"""The ingest stage of one logical date: reads `<landing>/<dataset>/date=D/`, runs the transforms of
jobs/bronze/ingest.py, replaces the date's partitions of the bronze tables and the quarantine, and
reads them back to reconcile: `landing rows = bronze + quarantined + duplicates + erased`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.bronze.contract import DATASETS, Dataset
from jobs.bronze.ingest import (
    STATUS_ACCEPTED,
    STATUS_QUARANTINED,
    IngestParams,
    classify,
    erase,
    mark_duplicates,
    parse,
    to_bronze,
    to_quarantine,
)
from jobs.config import Config
from jobs.context import RunContext
from jobs.errors import AudienceError
from jobs.io import delta_exists, path_exists, replace_partition
from jobs.privacy.pii import pseudonym_key
from jobs.progress import Progress
from jobs.tables import ERASURE_REQUESTS, INGEST_RECONCILIATION, QUARANTINE

log = logging.getLogger(__name__)


def ingest_params(cfg: Config, logical_date: dt.date, as_of: dt.datetime) -> IngestParams:
    return IngestParams(
        logical_date=logical_date,
        as_of=as_of,
        tolerance_hours=cfg.timestamp_tolerance_hours,
        iso_countries=cfg.iso_countries,
        topic_ids=frozenset(cfg.topics),
        sensitive_topic_ids=frozenset(x for x, topic in cfg.topics.items() if topic.sensitive),
        key=pseudonym_key(cfg.profile.allow_dev_pseudonym_key),
    )


def run(ctx: RunContext) -> dict:
    params = ingest_params(ctx.cfg, ctx.logical_date, ctx.as_of)
    datasets = run_ingest(ctx.spark, ctx.cfg, params, ctx.run_id, ctx.progress)
    return {"landing_rows": sum(r["read"] for r in datasets), "datasets": datasets}


def day_folder(cfg: Config, dataset: str, logical_date: dt.date) -> str:
    return f"{cfg.landing}/{dataset}/date={logical_date.isoformat()}"


def missing_daily_folders(cfg: Config, logical_date: dt.date) -> list[str]:
    """The date's folders of the datasets delivered every day (chat, engagement) not landed yet."""
    folders = [day_folder(cfg, ds.name, logical_date) for ds in DATASETS if ds.delivered_daily]
    return [folder for folder in folders if not path_exists(folder)]


def read_landing(spark: SparkSession, ds: Dataset, folder: str) -> DataFrame:
    """Raw rows as (value: JSON text, source_file). Parquet rows are re-encoded as JSON text."""
    source_file = F.col("_metadata.file_name").alias("source_file")
    arrived = F.col("_metadata.file_modification_time").alias("file_arrived_at")
    if ds.file_format == "jsonl":
        return spark.read.option("pathGlobFilter", ds.glob).text(folder).select(F.col("value"), source_file, arrived)
    frame = spark.read.option("pathGlobFilter", ds.glob).parquet(folder)
    missing = [f for f in ds.field_names if f not in frame.columns]
    columns = [F.col(f) if f in frame.columns else F.lit(None).cast("string").alias(f) for f in ds.field_names]
    if missing:
        log.warning("%s: files lack columns %s; their rows are quarantined", folder, missing)
    return frame.select(
        F.to_json(F.struct(*columns), {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"}).alias("value"),
        source_file,
        arrived,
    )


def _known_requests(spark, cfg: Config):
    path = ERASURE_REQUESTS.path(cfg.warehouse)
    return spark.read.format("delta").load(path) if delta_exists(path) else None


def _prior_keys(spark, cfg: Config, ds: Dataset, logical_date: dt.date):
    path = ds.table.path(cfg.warehouse)
    if not delta_exists(path):
        return None
    start = logical_date - dt.timedelta(days=cfg.duplicate_lookback_days)
    return (
        spark.read.format("delta")
        .load(path)
        .where(F.col("ingest_date").between(F.lit(start), F.lit(logical_date - dt.timedelta(days=1))))
        .select(*ds.key)
        .distinct()
    )


def ingest_dataset(spark, cfg: Config, ds: Dataset, params: IngestParams, progress: Progress):
    """Classify a dataset's landing rows and write its bronze partition; returns the counts and the
    quarantine rows, materialized (written with the other datasets' in one commit)."""
    folder = day_folder(cfg, ds.name, params.logical_date)
    counts = dict(dataset=ds.name, read=0, accepted=0, quarantined=0, duplicate=0, erased=0)
    present = path_exists(folder)
    if not present and ds.delivered_daily:
        raise AudienceError(
            f"landing folder missing: {folder} (upstream has not delivered "
            f"{ds.name} for {params.logical_date}; the run waits for it)"
        )
    if not present:  # a day without records: the date's partition is empty, the table still exists
        progress.note(f"{ds.name}: no folder for this date (no records)")
    try:
        raw = (
            read_landing(spark, ds, folder)
            if present
            else spark.createDataFrame([], "value string, source_file string, file_arrived_at timestamp")
        )
        rows = erase(
            mark_duplicates(classify(parse(raw, ds), ds, params), ds, _prior_keys(spark, cfg, ds, params.logical_date)),
            ds,
            _known_requests(spark, cfg),
        ).persist(StorageLevel.MEMORY_AND_DISK)
        by_status = dict(rows.groupBy("status").count().collect())
    except AudienceError:
        raise
    except Exception as exc:  # unreadable files: name the folder, not a JVM stack
        if "Path does not exist" in str(exc) or "UNABLE_TO_INFER_SCHEMA" in str(exc):
            progress.note(f"{ds.name}: folder holds no {ds.glob} files")
            return counts, None
        raise AudienceError(f"cannot read {folder}: {str(exc).splitlines()[0][:300]}") from exc
    counts.update({k: by_status.get(k, 0) for k in ("accepted", "quarantined", "duplicate", "erased")})
    counts["read"] = sum(by_status.values())
    # Materialized before the bronze commit: `rows` reads this table (earlier dates' keys), and a
    # Delta commit drops the cached frames that read it, so the quarantine rows would be recomputed
    # from the landing files (measured: 20 s of a 55 s ingest at make demo's size). A dataset with
    # nothing quarantined builds nothing (its expressions and checkpoint cost about 2 s).
    quarantine = (
        to_quarantine(rows.where(F.col("status") == STATUS_QUARANTINED), ds, params).localCheckpoint(eager=True)
        if counts["quarantined"]
        else None
    )
    bronze = to_bronze(rows.where(F.col("status") == STATUS_ACCEPTED), ds, params)
    replace_partition(bronze, ds.table, cfg.warehouse, {"ingest_date": params.logical_date})
    rows.unpersist()
    return counts, quarantine


def reconcile(spark, cfg: Config, results: list[dict], logical_date: dt.date) -> None:
    """Read the written partitions back (one job for all datasets): landing rows must equal
    bronze + quarantine + duplicates + erased."""
    written = [r for r in results if r["read"]]
    if not written:
        return
    date = F.col("ingest_date") == F.lit(logical_date)
    by_name = {ds.name: ds for ds in DATASETS}
    frames = [
        spark.read.format("delta")
        .load(by_name[r["dataset"]].table.path(cfg.warehouse))
        .where(date)
        .select(F.lit(r["dataset"]).alias("dataset"), F.lit("bronze").alias("stored"))
        for r in written
    ]
    frames.append(
        spark.read.format("delta")
        .load(QUARANTINE.path(cfg.warehouse))
        .where(date)
        .select("dataset", F.lit("quarantine").alias("stored"))
    )
    union = functools.reduce(DataFrame.unionByName, frames)
    found = {(r.dataset, r.stored): r["count"] for r in union.groupBy("dataset", "stored").count().collect()}
    for counts in written:
        name = counts["dataset"]
        bronze_rows, quarantined = found.get((name, "bronze"), 0), found.get((name, "quarantine"), 0)
        total = bronze_rows + quarantined + counts["duplicate"] + counts["erased"]
        if bronze_rows != counts["accepted"] or quarantined != counts["quarantined"] or total != counts["read"]:
            raise AudienceError(
                f"{name} {logical_date}: counts do not reconcile: landing {counts['read']} != bronze {bronze_rows}"
                f" + quarantine {quarantined} + duplicates {counts['duplicate']} + erased {counts['erased']}"
            )


def run_ingest(spark, cfg: Config, params: IngestParams, run_id: str, progress: Progress) -> list[dict]:
    """Ingest the five datasets for one logical date; returns per-dataset counts."""
    results, quarantined = [], []
    for ds in DATASETS:
        with progress.stage(f"ingest {ds.name}") as stage:
            counts, quarantine = ingest_dataset(spark, cfg, ds, params, progress)
            stage.rows = counts["read"]
        results.append(counts)
        quarantined += [quarantine] if quarantine is not None else []
    with progress.stage("ingest quarantine") as stage:
        union = functools.reduce(DataFrame.unionByName, quarantined, spark.createDataFrame([], QUARANTINE.schema))
        replace_partition(union, QUARANTINE, cfg.warehouse, {"ingest_date": params.logical_date})
        stage.rows = sum(r["quarantined"] for r in results)
    with progress.stage("ingest reconcile"):
        reconcile(spark, cfg, results, params.logical_date)
    recon = spark.createDataFrame(
        [
            (
                params.logical_date,
                r["dataset"],
                r["read"],
                r["accepted"],
                r["quarantined"],
                r["duplicate"],
                r["erased"],
                run_id,
            )
            for r in results
        ],
        INGEST_RECONCILIATION.schema,
    )
    replace_partition(recon, INGEST_RECONCILIATION, cfg.warehouse, {"ingest_date": params.logical_date})
    return results
