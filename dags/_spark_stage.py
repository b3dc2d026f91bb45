"""Shared by the audience DAG files: how a stage reaches Spark (not a DAG itself).

Nightly stages run in a warm engine that the run starts and stops (`engine_tasks`), each stage a
Spark Connect client; maintenance submits its own applications (`spark_stage`). Either way the
master comes from the `spark_default` connection."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import Asset

from jobs.ops.alerts import failure_alert

REPO = Path(__file__).resolve().parent.parent
ENTRYPOINT = str(REPO / "jobs" / "entrypoint.py")
# Delta's jars, and the object-store connector when `make s3-jars` fetched it (a profile whose
# roots are s3a:// URIs needs it in the applications spark-submit starts).
JARS = ",".join(sorted(str(p) for p in [*(REPO / "jars").glob("delta-*.jar"), *(REPO / "jars" / "s3").glob("*.jar")]))
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
KEY_TEMPLATE = (
    "{% set c = conn.get('audience_pseudonym') %}"
    "{{ c.password if c else var.value.get('audience_pseudonym_secret', '') }}"
)
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
        "AUDIENCE_PSEUDONYM_KEY_AIRFLOW": KEY_TEMPLATE,
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    },
}


# Every task that writes the warehouse (the nightly's stages, maintenance) takes this pool's only
# slot, so two writers never overlap, whichever DAG, run or backfill they belong to: OPTIMIZE and
# VACUUM never run beside a stage's write. scripts/airflow.sh creates it; a deployment creates it
# once: `airflow pools set audience_warehouse 1 "one warehouse writer at a time"`.
WAREHOUSE_POOL = "audience_warehouse"


def asset(table) -> Asset:
    """Named by table; the URI is logical so that every deployment (local path, object store) shares it."""
    return Asset(name=table.qualified, uri=f"delta://audience/{table.layer}/{table.name}")


def default_args(retries: int, retry_delay: dt.timedelta) -> dict:
    delay = os.environ.get("AUDIENCE_RETRY_DELAY_SECONDS")
    return {
        "owner": "audience-data-eng",
        "retries": retries,
        "retry_delay": dt.timedelta(seconds=int(delay)) if delay else retry_delay,
        "on_failure_callback": failure_alert,
    }


def spark_stage(task_id: str, args: list[str], timeout: dt.timedelta, **kwargs) -> SparkSubmitOperator:
    return SparkSubmitOperator(
        task_id=task_id,
        application_args=[*ROOTS, *args],
        name=f"audience-{task_id}",
        execution_timeout=timeout,
        pool=WAREHOUSE_POOL,
        **SUBMIT,
        **kwargs,
    )


# The command line of the worker's own interpreter (the venv with this package), and the master of
# `spark_default` as spark-submit would build it (host, then :port when the connection has one).
AUDIENCE = [sys.executable, "-m", "jobs.cli", *ROOTS]
MASTER = "{% set c = conn.spark_default %}{{ c.host }}{{ (':' ~ c.port) if c.port else '' }}"
# A long-lived engine the deployment runs (`audience engine start`, or a Spark Connect server built
# with this package's settings): with AUDIENCE_ENGINE set, runs use it and start none of their own.
SHARED_ENGINE = os.environ.get("AUDIENCE_ENGINE")
ENGINE_URL = SHARED_ENGINE or "{{ ti.xcom_pull(task_ids='engine_start') }}"
ENV = {
    "AUDIENCE_PSEUDONYM_KEY_AIRFLOW": KEY_TEMPLATE,
    "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
}


def _command(args: list[str]) -> str:
    """Shell words; a templated one in single quotes (its values, master and engine URLs, hold none)."""
    return " ".join(f"'{arg}'" if "{{" in arg else shlex.quote(arg) for arg in [*AUDIENCE, *args])


def _audience_task(task_id: str, args: list[str], timeout: dt.timedelta, **kwargs) -> BashOperator:
    return BashOperator(
        task_id=task_id,
        bash_command=_command(args),
        env=ENV,
        append_env=True,
        execution_timeout=timeout,
        **kwargs,
    )


def engine_tasks(timeout: dt.timedelta) -> list[BashOperator]:
    """[start, stop]: a setup task that starts the run's engine on `spark_default`'s master and
    pushes its URL, and the teardown that stops it whether the stages succeed or not; none when
    the deployment shares one engine (AUDIENCE_ENGINE)."""
    if SHARED_ENGINE:
        return []
    start = _audience_task(
        "engine_start",
        ["engine", "start", "--master", MASTER],
        timeout,
        doc_md="Starts the run's warm Spark engine (`audience engine start`); its last line, the URL, goes to XCom.",
    )
    stop = _audience_task(
        "engine_stop",
        ["engine", "stop", "--url", ENGINE_URL],
        timeout,
        doc_md="Stops the run's engine, whatever became of the stages.",
    )
    return [start.as_setup(), stop.as_teardown(setups=start)]


def engine_stage(task_id: str, args: list[str], timeout: dt.timedelta, **kwargs) -> BashOperator:
    """A stage run in the run's engine: `audience stage ... --engine URL` (a Spark Connect client)."""
    return _audience_task(task_id, [*args, "--engine", ENGINE_URL], timeout, pool=WAREHOUSE_POOL, **kwargs)
