"""Shared by the audience DAG files: how a stage is submitted to Spark (not a DAG itself)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

REPO = Path(__file__).resolve().parent.parent
ENTRYPOINT = str(REPO / "jobs" / "entrypoint.py")
JARS = ",".join(sorted(str(p) for p in (REPO / "jars").glob("delta-*.jar")))
# The profile every task runs: it refuses the development pseudonymization key (conf/pipeline.yaml).
PROFILE = "airflow"
# Roots from the worker's environment, passed to the jobs as command-line options.
ROOTS = ["--profile", PROFILE] + [
    arg
    for key, flag in (
        ("AUDIENCE_LANDING", "--landing"),
        ("AUDIENCE_WAREHOUSE", "--warehouse"),
        ("AUDIENCE_CONF", "--conf"),
    )
    if os.environ.get(key)
    for arg in (flag, os.environ[key])
]
SUBMIT = {
    "conn_id": "spark_default",
    "application": ENTRYPOINT,
    "jars": JARS,
    "conf": {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    },
    # The key reaches spark-submit at run time from the connection `audience_pseudonym` (its
    # password) or else the Variable `audience_pseudonym_secret`, both masked; never from a DAG file.
    "env_vars": {
        "AUDIENCE_PSEUDONYM_KEY_AIRFLOW": "{% set c = conn.get('audience_pseudonym') %}"
        "{{ c.password if c else var.value.get('audience_pseudonym_secret', '') }}",
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    },
}


def default_args(retries: int, retry_delay: dt.timedelta) -> dict:
    delay = os.environ.get("AUDIENCE_RETRY_DELAY_SECONDS")
    return {
        "owner": "audience-data-eng",
        "retries": retries,
        "retry_delay": dt.timedelta(seconds=int(delay)) if delay else retry_delay,
    }


def spark_stage(task_id: str, args: list[str], timeout: dt.timedelta, **kwargs) -> SparkSubmitOperator:
    return SparkSubmitOperator(
        task_id=task_id,
        application_args=[*ROOTS, *args],
        name=f"audience-{task_id}",
        execution_timeout=timeout,
        **SUBMIT,
        **kwargs,
    )
