#!/usr/bin/env bash
# Project-local Airflow: AIRFLOW_HOME under the repo, SQLite, this repo's dags/, Spark in local mode
# through the `spark_default` connection. Usage: scripts/airflow.sh <airflow arguments...>
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$repo/.venv/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$repo/airflow_home}"
export AIRFLOW__CORE__DAGS_FOLDER="$repo/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
# (The default is a variable: a literal JSON default inside ${...:-...} would end at its first "}"
# and append the rest to a connection the caller set.)
local_spark='{"conn_type": "spark", "host": "local[*]"}'
export AIRFLOW_CONN_SPARK_DEFAULT="${AIRFLOW_CONN_SPARK_DEFAULT:-$local_spark}"
export PYSPARK_PYTHON="$repo/.venv/bin/python"
export SPARK_LOCAL_IP=127.0.0.1
mkdir -p "$AIRFLOW_HOME"
if [ ! -f "$AIRFLOW_HOME/.migrated" ] || [ "$AIRFLOW_HOME/.migrated" -ot "$repo/setup.cfg" ]; then
  airflow db migrate >/dev/null 2>&1
  # The one-slot pool of every task that writes the warehouse (dags/_spark_stage.py).
  airflow pools set audience_warehouse 1 "one warehouse writer at a time" >/dev/null 2>&1
  touch "$AIRFLOW_HOME/.migrated"
fi
# DAGs (and the assets they declare) are registered before any run, as a dag processor would.
if [ "${1:-}" = "dags" ] && [ "${2:-}" = "test" ]; then
  airflow dags reserialize >/dev/null 2>&1
fi
exec airflow "$@"
