"""
### audience_maintenance

Daily upkeep of the audience Delta tables, scheduled on the `gold.segment_catalog` asset: it starts
when the nightly run publishes (and at 04:00 UTC whatever the nightly did), and its tasks
share the nightly stages' one-slot `audience_warehouse` pool, so no OPTIMIZE or VACUUM ever runs
beside a stage's write, backfills included. It removes chat text
past `chat_text_retention_days` and quarantined rows past their retention, OPTIMIZE of the large
tables, then the physical purge: deletion vectors PURGEd, Change Data Feed off, VACUUM after
`vacuum_retention_hours`, erasure log purge dates. After every publication (daily), not weekly, so
that erased rows leave the disk within `erasure_physical_days`; then `audience erasure-audit` checks
that nothing of a request past its deadline is stored anywhere, and fails the run if something is.
Runs through `spark_default`, like the nightly stages.
"""

from __future__ import annotations

import datetime as dt

from _spark_stage import asset, default_args, spark_stage
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable

from jobs.tables import SEGMENT_CATALOG

# The run's date: the day the publication that triggered it happened (retention counts from it).
TODAY = "{{ dag_run.run_after | ds }}"

with DAG(
    dag_id="audience_maintenance",
    doc_md=__doc__,
    # After each publication; and at 04:00 UTC whatever happened, so that VACUUM (erasures leave the
    # disk within erasure_physical_days) and the erasure audit never wait for a night that fails.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 4 * * *", timezone="UTC"), assets=asset(SEGMENT_CATALOG)
    ),
    start_date=dt.datetime(2025, 12, 14, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1, retry_delay=dt.timedelta(minutes=15)),
    tags=["audience", "spark", "delta", "maintenance"],
) as dag:
    maintain = spark_stage("maintain", ["maintain", "--date", TODAY], dt.timedelta(hours=2))
    audit = spark_stage("erasure_audit", ["erasure-audit", "--date", TODAY], dt.timedelta(hours=1))
    maintain >> audit
