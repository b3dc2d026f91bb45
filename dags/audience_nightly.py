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

from jobs.registry import STAGES


def asset(table) -> Asset:
    """Named by table; the URI is logical so that every deployment (local path, object store) shares it."""
    return Asset(name=table.qualified, uri=f"delta://audience/{table.layer}/{table.name}")


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

    @task(execution_timeout=dt.timedelta(minutes=1))
    def regions(ds=None, run_id=None) -> list[list[str]]:
        """Regions from conf at run time (not at parse time), one segments task each."""
        from jobs.config import load_config

        cfg = load_config(os.environ.get("AUDIENCE_CONF"))
        return [
            [*ROOTS, "stage", "segments", "--date", ds, "--run-id", run_id, "--region", r] for r in sorted(cfg.regions)
        ]

    # One task per stage of the registry, in its order; the published gold tables are assets.
    previous = None
    for stage in STAGES:
        timeout = dt.timedelta(minutes=stage.timeout_minutes)
        outlets = [asset(table) for table in stage.writes] if stage.publishes else []
        if stage.per_region:
            current = SparkSubmitOperator.partial(
                task_id=stage.name, execution_timeout=timeout, doc_md=stage.doc, **SUBMIT
            ).expand(application_args=regions())
        else:
            current = spark_stage(
                stage.name,
                ["stage", stage.name, "--date", "{{ ds }}", "--run-id", "{{ run_id }}"],
                timeout,
                doc_md=stage.doc,
                outlets=outlets,
            )
        if previous is not None:
            previous >> current
        previous = current
