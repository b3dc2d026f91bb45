"""
### audience_nightly

Builds the chat-signal audience segments of the previous UTC day and publishes them.

* **Schedule**: daily at 02:00 UTC for the data interval that just ended (explicit
  `CronDataIntervalTimetable`: `{{ ds }}` is the day being processed). No catchup: past dates are
  backfilled on purpose with `airflow backfill create --dag-id audience_nightly --from-date ... --to-date ...`.
* **Waiting for data**: `wait_for_landing` (a sensor in reschedule mode: no worker slot held between
  looks) waits for the day's `chat_messages` and `engagement_events` folders, which come every day
  (SPEC section 3), until `scheduling.landing_wait_hours` after its run's scheduled start (however
  the run was started), looking every `scheduling.landing_poke_seconds` (conf/pipeline.yaml); then
  it fails, naming the missing folders.
  A late delivery makes the run wait, not fail; no engine is started before the data is there.
* **Alerts** (`jobs/ops/alerts.py`, through the `audience_alerts` SMTP connection): every failed task
  sends one e-mail (date, task, try, first line of the error); a date not published
  `scheduling.publish_deadline_hours` after its run's scheduled start sends one too (an Airflow
  deadline alert, so the scheduler sends it while the run is still waiting or working).
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
import logging
import sys

from _spark_stage import ROOTS, asset, default_args, engine_stage, engine_tasks
from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback, chain, task
from airflow.timetables.interval import CronDataIntervalTimetable

from jobs.config import pipeline_settings
from jobs.registry import STAGES

SCHEDULING = pipeline_settings().scheduling
# Airflow 3.3's DAG.test (`airflow dags test`) fails when a run of a DAG with a deadline alert
# succeeds: it looks the alert up by its serialized form instead of the database id the scheduler's
# copy holds. The alert is the scheduler's business, so a test run goes without it.
DAG_TEST = sys.argv[1:3] == ["dags", "test"]


@task.sensor(
    task_id="wait_for_landing",
    mode="reschedule",
    poke_interval=SCHEDULING.landing_poke_seconds,
    # the deadline below ends the wait; this only bounds a sensor whose pokes keep failing
    timeout=(SCHEDULING.landing_wait_hours + 24) * 3600,
    execution_timeout=dt.timedelta(minutes=10),
    doc_md="Waits for the day's chat and engagement folders; fails naming them after the configured wait.",
)
def wait_for_landing(ds=None, logical_date=None) -> bool:
    from airflow.sdk.exceptions import AirflowFailException

    from jobs.bronze.stage import missing_daily_folders
    from jobs.config import load_config

    roots = dict(zip(ROOTS[::2], ROOTS[1::2]))
    cfg = load_config(roots.get("--conf"), roots["--profile"], roots.get("--landing"), roots.get("--warehouse"))
    missing = missing_daily_folders(cfg, dt.date.fromisoformat(ds))
    if not missing:
        return True
    # From the date's scheduled start (its logical date + 24 h, as the deadline alert counts), not
    # from the data interval: a manual run or `dags test` infers an interval that ends a day early.
    deadline = logical_date + dt.timedelta(hours=24 + cfg.scheduling.landing_wait_hours)
    if dt.datetime.now(dt.timezone.utc) >= deadline:
        raise AirflowFailException(
            f"landing folder missing at {deadline:%Y-%m-%d %H:%M} UTC, the end of the wait: {', '.join(missing)} "
            f"(upstream has not delivered {ds})"
        )
    logging.getLogger("airflow.task").info(
        "waiting until %s UTC for %s", f"{deadline:%Y-%m-%d %H:%M}", ", ".join(missing)
    )
    return False


with DAG(
    dag_id="audience_nightly",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=dt.datetime(2025, 12, 16, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2, retry_delay=dt.timedelta(minutes=5)),
    # The logical date is the start of the day processed; its run starts 24 h later.
    deadline=None
    if DAG_TEST
    else DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=dt.timedelta(hours=24 + SCHEDULING.publish_deadline_hours),
        callback=SyncCallback("jobs.ops.alerts.publication_late"),
        name="published",
    ),
    tags=["audience", "spark", "delta", "privacy"],
) as dag:
    # One task per stage of the registry, in its order, inside the run's engine; the published gold
    # tables are assets.
    engine = engine_tasks(dt.timedelta(minutes=10))
    chain(
        wait_for_landing(),
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
