"""The nightly DAG run for real: Airflow (`dags test`, SQLite) running each stage as a Spark
Connect client of the run's engine, on a small generated day, with a segments task killed mid-run
and retried; gold equals the command line's (classic session) run of the same night."""

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from smtp_sink import start_sink

from jobs import REPO_ROOT
from jobs import tables as t

pytestmark = pytest.mark.slow
D1, D2 = dt.date(2025, 12, 16), dt.date(2025, 12, 17)


@pytest.fixture(scope="module")
def airflow_run(spark, two_nights):
    """Night one as `audience run` left it; night two through Airflow, with a segments task killed once.
    The reference is the same night two run by `run_date` in `two_nights`."""
    from jobs.config import load_config

    root = two_nights["root"]
    cfg = load_config(
        two_nights["cfg"].conf_dir,
        profile="test",
        landing=two_nights["cfg"].landing,
        warehouse=root / "airflow-warehouse",
    )
    shutil.copytree(two_nights["after_d1"], cfg.warehouse)
    catalog_version_before = DeltaTable.forPath(spark, t.SEGMENT_CATALOG.path(cfg.warehouse)).history(1).first().version
    marker = root / "killed-once"
    alerts, mails = start_sink()
    env = {
        "AIRFLOW_CONN_AUDIENCE_ALERTS": json.dumps(alerts),
        **os.environ,
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AUDIENCE_LANDING": str(cfg.landing),
        "AUDIENCE_WAREHOUSE": str(cfg.warehouse),
        "AUDIENCE_KILL_ONCE": f"segments:{marker}",
        "AUDIENCE_RETRY_DELAY_SECONDS": "1",
        "AUDIENCE_PROFILE": "test",
        "AUDIENCE_CONF": str(cfg.conf_dir),
    }
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "airflow.sh"), "dags", "test", "audience_nightly", str(D2)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
    )
    (root / "dags-test.log").write_text(done.stdout + done.stderr)
    return dict(
        cfg=cfg,
        done=done,
        marker=marker,
        reference=two_nights["cfg"],
        log=done.stdout + done.stderr,
        catalog_version_before=catalog_version_before,
        mails=mails,
    )


def test_dag_run_succeeds_after_the_killed_segments_task_is_retried(airflow_run):
    assert airflow_run["done"].returncode == 0, airflow_run["log"][-3000:]
    assert airflow_run["marker"].exists(), "the fault was injected once"
    assert "DagRun Finished" in airflow_run["log"] and "state=success" in airflow_run["log"]
    # a task that succeeds on its retry alerts nobody (failure alerts come after the last try)
    assert airflow_run["mails"] == []


def test_the_runs_engine_is_stopped_by_its_teardown(airflow_run):
    urls = set(re.findall(r"sc://localhost:\d+", airflow_run["log"]))
    assert len(urls) == 1, urls  # one engine served every stage, the retried one too
    port = int(urls.pop().rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the engine still listens after the run"


def test_killed_attempt_published_nothing_and_publication_is_one_commit(spark, airflow_run):
    """While the segments task was down and retried, yesterday stayed the published snapshot:
    the catalog got exactly one commit from the DAG run, the publish task's."""
    cfg = airflow_run["cfg"]
    history = DeltaTable.forPath(spark, t.SEGMENT_CATALOG.path(cfg.warehouse)).history()
    new_commits = history.where(F.col("version") > airflow_run["catalog_version_before"]).collect()
    assert len(new_commits) == 1
    members = (
        spark.read.format("delta")
        .load(t.AUDIENCE_SEGMENTS.path(cfg.warehouse))
        .where(F.col("snapshot_date") == F.lit(D2))
    )
    assert members.count() == members.dropDuplicates(["region", "segment_id", "user_key"]).count()


def test_airflow_gold_equals_the_command_line_run_of_the_same_night(airflow_run, gold_snapshot):
    for table in (t.AUDIENCE_SEGMENTS, t.SEGMENT_CATALOG, t.USER_INTERESTS):
        assert_df_equality(
            gold_snapshot(airflow_run["cfg"].warehouse, table, D2),
            gold_snapshot(airflow_run["reference"].warehouse, table, D2),
            ignore_row_order=True,
        )
    catalog = gold_snapshot(airflow_run["cfg"].warehouse, t.SEGMENT_CATALOG, D2)
    assert catalog.count() == len(airflow_run["cfg"].regions) * 28
