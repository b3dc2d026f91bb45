"""DAG integrity, parametrized over every DAG file: imports, parse time, no heavy imports or
Variable access at module level, owner/tags/retries, and the nightly DAG's contract."""

import ast
import json
import os
import subprocess
import sys

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
                   "teardown": [t.task_id for t in d.tasks if t.is_teardown]}
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
    assert dag["timetable"] == "CronDataIntervalTimetable"


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


def test_nightly_dag_has_one_task_per_stage_inside_the_runs_engine(tmp_path):
    nightly = REPO_ROOT / "dags" / "audience_nightly.py"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(nightly)], capture_output=True, text=True, env=env, timeout=120
    )
    dag = json.loads(out.stdout.strip().splitlines()[-1])["dags"]["audience_nightly"]
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
    """Pointing the DAGs at a cluster is setting AIRFLOW_CONN_SPARK_DEFAULT before scripts/airflow.sh."""
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


# The nightly DAG's sensor run by Airflow (`dag.test`, SQLite): a late delivery and one that never
# comes, with failure alerts sent to an SMTP sink on 127.0.0.1 (the `audience_alerts` connection).
SENSOR_RUN = """
import datetime as dt, email, json, os, pathlib, socketserver, sqlite3, sys, threading, time
sys.path.insert(0, os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
mails = []

class Sink(socketserver.StreamRequestHandler):  # just enough SMTP to take a message
    def handle(self):
        self.wfile.write(b"220 sink\\r\\n")
        data = None
        for raw in self.rfile:
            line = raw.decode(errors="replace").rstrip("\\r\\n")
            if data is not None:
                if line == ".":
                    mails.append(email.message_from_string("\\n".join(data)))
                    data = None
                    self.wfile.write(b"250 ok\\r\\n")
                else:
                    data.append(line[1:] if line.startswith("..") else line)
            elif line[:4].upper() == "DATA":
                data = []
                self.wfile.write(b"354 go on\\r\\n")
            elif line[:4].upper() == "QUIT":
                self.wfile.write(b"221 bye\\r\\n")
                return
            else:
                self.wfile.write(b"250 ok\\r\\n")

sink = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Sink)
threading.Thread(target=sink.serve_forever, daemon=True).start()
os.environ["AIRFLOW_CONN_AUDIENCE_ALERTS"] = json.dumps({
    "conn_type": "smtp", "host": "127.0.0.1", "port": sink.server_address[1],
    "extra": {"to": "oncall@example.org", "from_email": "airflow@example.org",
              "disable_tls": True, "disable_ssl": True},
})
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).get_dag("audience_nightly")
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
body = lambda m: "".join(p.get_payload(decode=True).decode() for p in m.walk() if not p.is_multipart())
out["alerts"] = [{"to": m["To"], "subject": m["Subject"], "body": body(m)} for m in mails]
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
        [sys.executable, "-c", SENSOR_RUN, str(REPO_ROOT / "dags" / "audience_nightly.py")],
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
    error = f"landing folder missing at 2025-12-16 08:00 UTC, the end of the wait: {missing}"
    [alert] = result["alerts"]
    assert alert["to"] == "oncall@example.org"
    assert alert["subject"] == "[audience] audience_nightly 2025-12-16: wait_for_landing failed"
    assert "Date: 2025-12-16" in alert["body"] and "Task: wait_for_landing" in alert["body"]
    assert error in alert["body"]
