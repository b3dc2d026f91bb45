"""
### audience_nightly

Builds the chat-signal audience segments of the previous UTC day and publishes them.

* **Schedule**: daily at 02:00 UTC for the data interval that just ended (explicit
  `CronDataIntervalTimetable`: `{{ ds }}` is the day being processed). No catchup: past dates are
  backfilled on purpose with `airflow backfill create --dag-id audience_nightly --from-date ... --to-date ...`.
* **Tasks**: one per stage, each a short `audience stage ... --engine URL` process joining the run's
  warm Spark engine (Spark Connect) that `engine_start` starts on `spark_default`'s master (set
  `AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "local[*]"}'` for local mode; point it
  at a cluster to scale) and the teardown `engine_stop` stops. A stage in a new JVM costs 3 to 7
  times what it costs in a warm one (measured at `make demo`'s size). Every stage replaces only its
  own partitions, so retries, clears and backfills are idempotent; clearing a stage clears
  `engine_start` too (a setup task), so a retried run gets an engine. With `AUDIENCE_ENGINE=sc://...`
  in the environment the DAG is parsed in, every run uses that long-lived engine instead.
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

from _spark_stage import default_args, engine_stage, engine_tasks
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
    # One task per stage of the registry, in its order, inside the run's engine; the published gold
    # tables are assets.
    engine = engine_tasks(dt.timedelta(minutes=10))
    chain(
        *engine[:1],
        *(
            engine_stage(
                stage.name,
                ["stage", stage.name, "--date", "{{ ds }}", "--run-id", "{{ run_id }}"],
                dt.timedelta(minutes=stage.timeout_minutes),
                doc_md=stage.doc,
                outlets=[asset(table) for table in stage.writes] if stage.publishes else [],
            )
            for stage in STAGES
        ),
        *engine[1:],
    )
