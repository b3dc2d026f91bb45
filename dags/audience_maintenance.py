"""
### audience_maintenance

Daily upkeep of the audience Delta tables (04:00 UTC, after the nightly run): removal of chat text
past `chat_text_retention_days` and quarantined rows past their retention, OPTIMIZE of the large
tables, then the physical purge: deletion vectors PURGEd, Change Data Feed off, VACUUM after
`vacuum_retention_hours`, erasure log purge dates. Daily, not weekly, so that erased rows leave the
disk within `erasure_physical_days`; then `audience erasure-audit` checks that nothing of a request
past its deadline is stored anywhere, and fails the run if something is.
Runs through `spark_default`, like the nightly stages.
"""

from __future__ import annotations

import datetime as dt

from _spark_stage import default_args, spark_stage
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

with DAG(
    dag_id="audience_maintenance",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 4 * * *", timezone="UTC"),
    start_date=dt.datetime(2025, 12, 14, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1, retry_delay=dt.timedelta(minutes=15)),
    tags=["audience", "spark", "delta", "maintenance"],
) as dag:
    maintain = spark_stage("maintain", ["maintain", "--date", "{{ data_interval_end | ds }}"], dt.timedelta(hours=2))
    audit = spark_stage(
        "erasure_audit", ["erasure-audit", "--date", "{{ data_interval_end | ds }}"], dt.timedelta(hours=1)
    )
    maintain >> audit
