"""
### audience_maintenance

Weekly upkeep of the audience Delta tables (Sunday 04:00 UTC): OPTIMIZE of the large tables,
removal of chat text past `chat_text_retention_days` and quarantined rows past their retention,
then VACUUM with the retention of `erasure_physical_days`, so erased rows cannot come back by time
travel after that. Runs `audience maintain` through `spark_default`, like the nightly stages.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

REPO = Path(__file__).resolve().parent.parent
ROOTS = [arg for key, flag in (("AUDIENCE_LANDING", "--landing"), ("AUDIENCE_WAREHOUSE", "--warehouse"),
                               ("AUDIENCE_CONF", "--conf")) if os.environ.get(key)
         for arg in (flag, os.environ[key])]

with DAG(
    dag_id="audience_maintenance",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 4 * * 0", timezone="UTC"),
    start_date=dt.datetime(2025, 12, 14, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "audience-data-eng", "retries": 1, "retry_delay": dt.timedelta(minutes=15)},
    tags=["audience", "spark", "delta", "maintenance"],
) as dag:
    SparkSubmitOperator(
        task_id="maintain",
        conn_id="spark_default",
        application=str(REPO / "jobs" / "entrypoint.py"),
        application_args=[*ROOTS, "maintain", "--date", "{{ ds }}"],
        jars=",".join(sorted(str(p) for p in (REPO / "jars").glob("delta-*.jar"))),
        conf={"spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
              "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog"},
        execution_timeout=dt.timedelta(hours=2),
    )
