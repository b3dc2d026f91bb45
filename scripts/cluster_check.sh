#!/usr/bin/env bash
# Cluster mode on this machine: a Spark standalone master and worker on 127.0.0.1 from the pyspark
# distribution (spark-class), the nightly DAG run for one date against spark://127.0.0.1:7077
# through the `spark_default` connection (its engine's executors on the worker), the same date
# through the command line in local mode, then their gold tables compared row for row. Master and
# worker are stopped whatever happens. Work folder: $CLUSTER_WORK (default /tmp/audience-cluster).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
work="${CLUSTER_WORK:-/tmp/audience-cluster}"
day="${CLUSTER_DATE:-2025-12-16}"
master_url="spark://127.0.0.1:7077"
ui_port="${CLUSTER_UI_PORT:-8090}"  # Airflow's own UI takes 8080
export SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$repo/.venv/bin/python"
export AUDIENCE_PSEUDONYM_KEY="${AUDIENCE_PSEUDONYM_KEY:-cluster-check-only-key}"
unset AUDIENCE_ENGINE  # the run starts its own engine, on the cluster
export AUDIENCE_RETRY_DELAY_SECONDS="${AUDIENCE_RETRY_DELAY_SECONDS:-5}"  # a failing check fails in seconds
spark_home="$(.venv/bin/python -c 'from pyspark.find_spark_home import _find_spark_home; print(_find_spark_home())')"
rm -rf "$work" && mkdir -p "$work"
started=$(date +%s)

wait_for() {  # wait_for <file> <text> <what>: until the log says it, or 120 s
  for _ in $(seq 240); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "cluster-check: $3 did not start (log $1):" >&2
  tail -5 "$1" >&2
  exit 1
}

echo "== master $master_url and one worker (2 cores) from $spark_home"
"$spark_home/bin/spark-class" org.apache.spark.deploy.master.Master \
  --host 127.0.0.1 --port 7077 --webui-port "$ui_port" >"$work/master.log" 2>&1 &
master_pid=$!
worker_pid=""
trap 'kill $worker_pid $master_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT
wait_for "$work/master.log" "I have been elected leader" "the master"
"$spark_home/bin/spark-class" org.apache.spark.deploy.worker.Worker "$master_url" \
  --host 127.0.0.1 --cores 2 --memory 3g --webui-port $((ui_port + 1)) --work-dir "$work/worker" \
  >"$work/worker.log" 2>&1 &
worker_pid=$!
wait_for "$work/worker.log" "Successfully registered with master" "the worker"

# Small, yet large enough for every region to publish segments (the gold rows compared).
.venv/bin/audience -q --landing "$work/landing" generate --date "$day" --messages 3000 --events 60000 \
  --users 4000 --topic-skew 1 >/dev/null

echo "== airflow dags test audience_nightly $day on $master_url (log $work/airflow.log)"
if ! AIRFLOW_HOME="$work/airflow_home" \
  AIRFLOW_CONN_SPARK_DEFAULT="{\"conn_type\": \"spark\", \"host\": \"spark://127.0.0.1\", \"port\": 7077}" \
  AUDIENCE_LANDING="$work/landing" AUDIENCE_WAREHOUSE="$work/warehouse-cluster" \
  scripts/airflow.sh dags test audience_nightly "$day" >"$work/airflow.log" 2>&1; then
  grep -E "\[error|Task failed|audience: " "$work/airflow.log" | tail -5 >&2
  echo "cluster-check: the DAG run failed (log $work/airflow.log)" >&2
  exit 1
fi
# The master's record of the applications it ran: the run's engine must be among them.
apps=$(curl -s "http://127.0.0.1:$ui_port/json/" | .venv/bin/python -c '
import json, sys
state = json.load(sys.stdin)
apps = state["activeapps"] + state["completedapps"]
print(", ".join("%s (%s cores, %s)" % (a["name"], a["cores"], a["state"]) for a in apps))')
case "$apps" in
*audience-engine-*) echo "   ran on the cluster: $apps" ;;
*) echo "cluster-check: the master ran no audience engine (applications: ${apps:-none})" >&2; exit 1 ;;
esac

echo "== audience run --date $day in local mode"
.venv/bin/audience -q --profile airflow --landing "$work/landing" --warehouse "$work/warehouse-local" \
  run --date "$day" >"$work/local.log" 2>&1 || { tail -5 "$work/local.log" >&2; exit 1; }

echo "== gold tables: cluster run vs local run"
.venv/bin/python scripts/compare_tables.py "$work/warehouse-cluster" "$work/warehouse-local"
echo "cluster-check: identical gold tables in $(( $(date +%s) - started )) s"
