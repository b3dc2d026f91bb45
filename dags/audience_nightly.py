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
* **Segments** builds every region in one application: mapping it per region cost a `spark-submit`
  (JVM, imports, Delta log reads) per region for seconds of work each (measured: nine mapped tasks
  took 160 s; one task for all nine regions takes 35 s at `make demo`'s size).
  `audience stage segments --region R` re-runs one region.
  **Publish** commits members then the catalog (the publication point) and updates the
  `gold.audience_segments` / `gold.segment_catalog` assets.
* **Secrets**: the pseudonymization key comes from the worker's `AUDIENCE_PSEUDONYM_KEY` or the
  Airflow Variable `audience_pseudonym_secret` (masked); never from this file.
"""

from __future__ import annotations

import datetime as dt

from _spark_stage import default_args, spark_stage
from airflow.sdk import DAG, Asset, chain
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
    # One task per stage of the registry, in its order; the published gold tables are assets.
    chain(
        *(
            spark_stage(
                stage.name,
                ["stage", stage.name, "--date", "{{ ds }}", "--run-id", "{{ run_id }}"],
                dt.timedelta(minutes=stage.timeout_minutes),
                doc_md=stage.doc,
                outlets=[asset(table) for table in stage.writes] if stage.publishes else [],
            )
            for stage in STAGES
        )
    )
