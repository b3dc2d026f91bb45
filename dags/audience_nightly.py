"""
### audience_nightly

Builds the chat-signal audience segments of the previous UTC day and publishes them.

* **Schedule**: daily at 02:00 UTC for the data interval that just ended (explicit
  `CronDataIntervalTimetable`: `{{ ds }}` is the day being processed). No catchup: past dates are
  backfilled on purpose with `airflow backfill create --dag-id audience_nightly --from-date ... --to-date ...`.
* **Tasks**: one Spark application per stage, submitted with `SparkSubmitOperator` against
  `spark_default` (set `AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "local[*]"}'` for
  local mode; point it at a cluster to scale). Every stage replaces only its own partitions, so
  retries, clears and backfills are idempotent.
* **Segments** are mapped per region; **publish** commits members then the catalog (the publication
  point) and updates the `gold.audience_segments` / `gold.segment_catalog` assets.
* **Secrets**: the pseudonymization key comes from the worker's `AUDIENCE_PSEUDONYM_KEY` or the
  Airflow Variable `audience_pseudonym_secret` (masked); never from this file.
"""
from __future__ import annotations

import datetime as dt
import os

from _spark_stage import ROOTS, SUBMIT, default_args, spark_stage
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset, task
from airflow.timetables.interval import CronDataIntervalTimetable

# Named by table; the URI is logical so that every deployment (local path, object store) shares it.
SEGMENTS = Asset(name="gold.audience_segments", uri="delta://audience/gold/audience_segments")
CATALOG = Asset(name="gold.segment_catalog", uri="delta://audience/gold/segment_catalog")


def stage(name: str, minutes: int, **kwargs) -> SparkSubmitOperator:
    return spark_stage(name, ["stage", name, "--date", "{{ ds }}", "--run-id", "{{ run_id }}"],
                       dt.timedelta(minutes=minutes), **kwargs)


with DAG(
    dag_id="audience_nightly",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=dt.datetime(2025, 12, 16, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2, retry_delay=dt.timedelta(minutes=5)),
    tags=["audience", "spark", "delta", "privacy"],
) as dag:
    ingest = stage("ingest", 60)
    privacy = stage("privacy", 30)
    signals = stage("signals", 60)
    interests = stage("interests", 30)

    @task(execution_timeout=dt.timedelta(minutes=1))
    def regions(ds=None, run_id=None) -> list[list[str]]:
        """Regions from conf at run time (not at parse time), one segments task each."""
        from jobs.config import load_config
        cfg = load_config(os.environ.get("AUDIENCE_CONF"))
        return [[*ROOTS, "stage", "segments", "--date", ds, "--run-id", run_id, "--region", r]
                for r in sorted(cfg.regions)]

    segments = SparkSubmitOperator.partial(
        task_id="segments", execution_timeout=dt.timedelta(minutes=30), **SUBMIT,
    ).expand(application_args=regions())
    publish = stage("publish", 15, outlets=[SEGMENTS, CATALOG])

    ingest >> privacy >> signals >> interests >> segments >> publish
