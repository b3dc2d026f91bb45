"""DAG integrity, parametrized over every DAG file: imports, parse time, no heavy imports or
Variable access at module level, owner/tags/retries, and the nightly DAG's contract."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import REPO_ROOT

DAG_FILES = sorted((REPO_ROOT / "dags").glob("audience_*.py"))
PROBE = """
import json, os, sys, time
sys.path.insert(0, os.environ["AIRFLOW__CORE__DAGS_FOLDER"])  # as Airflow does for the dags-folder bundle
t = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
import_airflow = time.perf_counter() - t
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
parse = time.perf_counter() - t
dags = {d.dag_id: {"owner": d.default_args.get("owner"), "tags": sorted(d.tags),
                   "retries": [t.retries for t in d.tasks], "max_active_runs": d.max_active_runs,
                   "catchup": d.catchup, "timetable": type(d.timetable).__name__,
                   "timeouts": [t.execution_timeout is not None for t in d.tasks],
                   "tasks": sorted(t.task_id for t in d.tasks), "doc": bool(d.doc_md),
                   "setup": [t.task_id for t in d.tasks if t.is_setup],
                   "teardown": [t.task_id for t in d.tasks if t.is_teardown],
                   "pools": {t.task_id: t.pool for t in d.tasks},
                   "asset_schedule": getattr(getattr(d.timetable, "asset_condition", None), "name", None),
                   "outlets": sorted(a.name for t in d.tasks for a in t.outlets),
                   "deadlines": [(type(a.reference).__name__, a.interval.total_seconds(), a.callback.path)
                                 for a in d.deadline or []]}
        for d in bag.dags.values()}
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "parse_seconds": parse,
                  "heavy": sorted(m for m in ("pyspark", "great_expectations", "delta") if m in sys.modules),
                  "dags": dags}))
"""


@pytest.fixture(scope="module", params=DAG_FILES, ids=lambda p: p.name)
def probe(request, tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(request.param)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return request.param, json.loads(out.stdout.strip().splitlines()[-1])


def test_dag_file_imports_without_errors(probe):
    path, result = probe
    assert result["errors"] == {} and len(result["dags"]) == 1, path.name


def test_dag_file_parses_in_under_a_second(probe):
    assert probe[1]["parse_seconds"] < 1.0


def test_no_spark_or_gx_imported_at_parse_time(probe):
    assert probe[1]["heavy"] == []


def test_owner_tags_retries_timeouts_and_docs(probe):
    (dag,) = probe[1]["dags"].values()
    assert dag["owner"] and dag["tags"] and dag["doc"]
    assert all(r >= 1 for r in dag["retries"]) and all(dag["timeouts"])
    assert dag["max_active_runs"] == 1 and dag["catchup"] is False
    assert dag["timetable"] in ("CronDataIntervalTimetable", "AssetOrTimeSchedule")


def test_maintenance_starts_on_publication_and_never_writes_beside_a_nightly_stage(tmp_path):
    """Maintenance is scheduled on the catalog the nightly publishes, and every task that writes the
    warehouse, in either DAG, takes a slot of the same pool (scripts/airflow.sh gives it one slot:
    tested with the connection below)."""
    nightly, maintenance = (probe_dag(tmp_path, name) for name in ("audience_nightly", "audience_maintenance"))
    assert maintenance["asset_schedule"] == "gold.segment_catalog" in nightly["outlets"]
    writers = {**nightly["pools"], **maintenance["pools"]}
    for task in ("wait_for_landing", "engine_start", "engine_stop"):  # no writes: outside the pool
        assert writers.pop(task) == "default_pool"
    assert set(writers.values()) == {"audience_warehouse"}, writers
    assert {"ingest", "privacy", "publish", "maintain", "erasure_audit"} <= set(writers)
    from jobs.config import pipeline_settings

    hours = pipeline_settings().scheduling.publish_deadline_hours
    late = ["DagRunLogicalDateDeadline", (24 + hours) * 3600, "jobs.ops.alerts.publication_late"]
    assert nightly["deadlines"] == [late]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_variable_access_at_module_level(path):
    tree = ast.parse(path.read_text())
    module_level = [node for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    calls = [
        n
        for node in module_level
        for n in ast.walk(node)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "get"
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "Variable"
    ]
    assert calls == []
    assert "AUDIENCE_PSEUDONYM_KEY=" not in path.read_text()


def test_every_task_runs_the_profile_that_refuses_the_development_key(tmp_path):
    from jobs.config import load_config
    from jobs.privacy.pii import DEV_KEY, KEY_ENV

    sys.path.insert(0, str(REPO_ROOT / "dags"))
    from _spark_stage import ROOTS

    assert ROOTS[:2] == ["--profile", "airflow"]
    assert load_config(profile="airflow").profile.allow_dev_pseudonym_key is False
    for key in ("", DEV_KEY):
        env = {**os.environ, KEY_ENV: key, "AUDIENCE_PSEUDONYM_KEY_AIRFLOW": "", "AUDIENCE_LOG_DIR": str(tmp_path)}
        done = subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "jobs" / "entrypoint.py"),
                *ROOTS,
                "--landing",
                str(tmp_path),
                "--warehouse",
                str(tmp_path),
                "stage",
                "ingest",
                "--date",
                "2025-12-16",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 2 and KEY_ENV in done.stderr, done.stderr[-1000:]


def probe_dag(tmp_path, dag_id: str) -> dict:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO_ROOT / "dags" / f"{dag_id}.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["dags"][dag_id]


def test_nightly_dag_has_one_task_per_stage_inside_the_runs_engine(tmp_path):
    dag = probe_dag(tmp_path, "audience_nightly")
    assert dag["tasks"] == sorted(
        [
            "wait_for_landing",
            "engine_start",
            "ingest",
            "privacy",
            "signals",
            "interests",
            "segments",
            "publish",
            "engine_stop",
        ]
    )
    assert dag["setup"] == ["engine_start"] and dag["teardown"] == ["engine_stop"]


def test_airflow_script_keeps_the_spark_connection_a_caller_sets_and_defaults_to_local(tmp_path):
    """Pointing the DAGs at a cluster is setting AIRFLOW_CONN_SPARK_DEFAULT before scripts/airflow.sh;
    the script also creates the warehouse writers' one-slot pool."""
    cluster = {"conn_type": "spark", "host": "spark://127.0.0.1", "port": 7077}
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_SPARK_DEFAULT"}
    env["AIRFLOW_HOME"] = str(tmp_path)

    def connection(**extra):
        done = subprocess.run(
            [str(REPO_ROOT / "scripts" / "airflow.sh"), "connections", "get", "spark_default", "-o", "json"],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-1000:]
        (conn,) = json.loads(done.stdout[done.stdout.index("[") :])
        return conn["host"], conn["port"] and int(conn["port"])

    assert connection(AIRFLOW_CONN_SPARK_DEFAULT=json.dumps(cluster)) == ("spark://127.0.0.1", 7077)
    assert connection() == ("local[*]", None)
    pools = subprocess.run(
        [str(REPO_ROOT / "scripts" / "airflow.sh"), "pools", "get", "audience_warehouse", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert pools.returncode == 0, pools.stderr[-1000:]
    assert json.loads(pools.stdout[pools.stdout.index("[") :])[0]["slots"] in (1, "1")


# The nightly DAG's sensor run by Airflow (`dag.test`, SQLite): a late delivery and one that never
# comes, with failure alerts sent to an SMTP sink on 127.0.0.1 (the `audience_alerts` connection).
SENSOR_RUN = """
import datetime as dt, json, os, pathlib, sqlite3, sys, threading, time
sys.path.insert(0, os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
sys.path.insert(0, sys.argv[2])
from smtp_sink import start_sink, summary
connection, mails = start_sink()
os.environ["AIRFLOW_CONN_AUDIENCE_ALERTS"] = json.dumps(connection)
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).get_dag("audience_nightly")
dag.deadline = None  # as under `airflow dags test` (audience_nightly.DAG_TEST)
sensor = dag.partial_subset(["wait_for_landing"], include_downstream=False, include_upstream=False)
landing, db = pathlib.Path(os.environ["AUDIENCE_LANDING"]), os.environ["AIRFLOW_HOME"] + "/airflow.db"

def reschedules():
    with sqlite3.connect(db) as c:
        return c.execute("SELECT count(*) FROM task_reschedule").fetchone()[0]

def deliver_after_a_wait(day):  # once the sensor has given its slot back at least once
    while reschedules() == 0:
        time.sleep(0.5)
    for ds in ("chat_messages", "engagement_events"):
        (landing / ds / f"date={day}").mkdir(parents=True)

out = {}
tomorrow = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)
for label, day in (("late", tomorrow), ("never", dt.date(2025, 12, 16))):
    if label == "late":
        threading.Thread(target=deliver_after_a_wait, args=(tomorrow,), daemon=True).start()
    run = sensor.test(logical_date=dt.datetime(day.year, day.month, day.day, 2, tzinfo=dt.timezone.utc))
    out[label] = {"state": str(run.state), "reschedules": reschedules(), "mails": len(mails)}
out["alerts"] = [summary(m) for m in mails]
print(json.dumps(out))
"""


def test_the_nightly_waits_for_a_late_landing_folder_and_alerts_on_one_that_never_comes(tmp_path):
    """SPEC section 3: a missing chat or engagement folder means upstream is late; the DAG waits
    (reschedule mode: no worker slot held) and runs once it lands; past the configured wait it
    fails naming the missing folders, and the failure sends one alert (date, task, first line of
    the error) through the `audience_alerts` SMTP connection."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AUDIENCE_LANDING": str(tmp_path / "landing"),
        "AUDIENCE_LANDING_POKE_SECONDS": "1",
    }
    airflow = str(REPO_ROOT / ".venv" / "bin" / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, check=True, timeout=300)
    done = subprocess.run(
        [sys.executable, "-c", SENSOR_RUN, str(REPO_ROOT / "dags" / "audience_nightly.py"), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["late"] == {"state": "success", "reschedules": result["late"]["reschedules"], "mails": 0}
    assert result["late"]["reschedules"] >= 1
    assert result["never"]["state"] == "failed"
    missing = tmp_path / "landing" / "chat_messages" / "date=2025-12-16"
    # the wait ends 6 h (landing_wait_hours) after the date's scheduled run, 2025-12-17 02:00 UTC,
    # for a run started by hand as for a scheduled one
    error = f"landing folder missing at 2025-12-17 08:00 UTC, the end of the wait: {missing}"
    [alert] = result["alerts"]
    assert alert["to"] == "oncall@example.org"
    assert alert["subject"] == "[audience] audience_nightly 2025-12-16: wait_for_landing failed"
    assert "Date: 2025-12-16" in alert["body"] and "Task: wait_for_landing" in alert["body"]
    assert error in alert["body"]


@pytest.mark.slow
def test_a_date_not_published_by_its_deadline_sends_one_alert_from_the_scheduler(tmp_path):
    """Airflow's own scheduler (with its API server, SQLite, LocalExecutor) notices that a run has not
    published its date by the deadline and sends one alert through `audience_alerts`. The DAG stays
    paused, so its run waits in the queue: no task, no Spark. A deadline of 0 hours after the run's
    scheduled start is due 60 s after the trigger."""
    import datetime as dt
    import signal
    import time

    from smtp_sink import start_sink, summary

    from jobs.engine import _free_port

    connection, mails = start_sink()
    api_port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW_CONN_AUDIENCE_ALERTS": json.dumps(connection),
        "AUDIENCE_LANDING": str(tmp_path / "landing"),
        "AUDIENCE_PUBLISH_DEADLINE_HOURS": "0",
    }
    airflow = [str(REPO_ROOT / "scripts" / "airflow.sh")]

    def cli(*args):
        for _ in range(5):  # SQLite admits one writer: the scheduler may hold the lock for a moment
            done = subprocess.run([*airflow, *args], capture_output=True, text=True, env=env, timeout=300)
            if done.returncode == 0 or "database is locked" not in done.stderr:
                return done
            time.sleep(5)
        return done

    assert cli("dags", "reserialize").returncode == 0
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("api-server", "scheduler")}
    components = [
        subprocess.Popen([*airflow, name], env=env, stdout=log, stderr=subprocess.STDOUT) for name, log in logs.items()
    ]
    try:
        logical = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=60, days=-1)
        trigger = cli("dags", "trigger", "audience_nightly", "--logical-date", logical.isoformat())
        assert trigger.returncode == 0, trigger.stderr[-2000:]
        waited = time.monotonic()
        while not mails and time.monotonic() - waited < 300:
            time.sleep(2)
        time.sleep(10)  # a second alert would come now
    finally:
        for process in components:
            process.send_signal(signal.SIGINT)
        for process in components:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    logs = "".join((tmp_path / f"{name}.log").read_text()[-1500:] for name in ("api-server", "scheduler"))
    assert len(mails) == 1, logs
    alert = summary(mails[0])
    deadline = logical + dt.timedelta(days=1)
    assert alert["to"] == "oncall@example.org"
    assert alert["subject"] == (
        f"[audience] audience_nightly {logical.date()}: not published by {deadline:%Y-%m-%d %H:%M} UTC"
    )
    assert f"Date: {logical.date()}" in alert["body"] and "publish not done" in alert["body"]


def test_an_alert_connection_without_recipients_says_so_instead_of_failing_the_callback():
    """An `audience_alerts` connection set up without `to` in its extra: the callback names what is
    missing in one line and returns (a KeyError there would hide the failure it reports)."""
    alert = (
        "from jobs.ops import alerts; alerts._send('[audience] x failed', ['Date: 2025-12-16'], {}); print('returned')"
    )
    connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": 25, "extra": {"from_email": "a@example.org"}}
    done = subprocess.run(
        [sys.executable, "-c", alert],
        capture_output=True,
        text=True,
        env={**os.environ, "AIRFLOW_CONN_AUDIENCE_ALERTS": json.dumps(connection)},
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("returned"), done.stderr[-2000:]
    assert "audience_alerts has no `to` in its extra: alert not sent: [audience] x failed" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
