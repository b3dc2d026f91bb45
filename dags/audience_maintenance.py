"""
### audience_maintenance

Weekly upkeep of the audience Delta tables (Sunday 04:00 UTC): OPTIMIZE of the large tables,
removal of chat text past `chat_text_retention_days` and quarantined rows past their retention,
then VACUUM with the retention of `erasure_physical_days`, so erased rows cannot come back by time
travel after that. Runs `audience maintain` through `spark_default`, like the nightly stages.
"""
from __future__ import annotations

import datetime as dt

from _spark_stage import default_args, spark_stage
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

with DAG(
    dag_id="audience_maintenance",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 4 * * 0", timezone="UTC"),
    start_date=dt.datetime(2025, 12, 14, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1, retry_delay=dt.timedelta(minutes=15)),
    tags=["audience", "spark", "delta", "maintenance"],
) as dag:
    spark_stage("maintain", ["maintain", "--date", "{{ ds }}"], dt.timedelta(hours=2))
