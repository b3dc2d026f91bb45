#!/usr/bin/env bash
# The main job on the embedded default: sample landing data, then the nightly Airflow DAG run for
# real (airflow dags test: SQLite; stages in one warm Spark engine, local[*]) for each demo date,
# then the last date's report, printed and as charts in reports/ (HTML). Roots: ./landing,
# ./warehouse, ./airflow_home, ./reports (all git-ignored).
# The size is one at which every region publishes several segments and suppresses a few (the
# smallest regions hold about 2% of the users; a segment needs 100 members).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
start="${DEMO_START:-2025-12-16}"
days="${DEMO_DAYS:-2}"
messages="${DEMO_MESSAGES:-10000}"
users="${DEMO_USERS:-40000}"
events="${DEMO_EVENTS:-400000}"
demo_start_s=$(date +%s)
export AUDIENCE_LANDING="$repo/landing" AUDIENCE_WAREHOUSE="$repo/warehouse"
# DAG tasks refuse the development key: the demo sets its own (a real deployment sets a secret).
export AUDIENCE_PSEUDONYM_KEY="${AUDIENCE_PSEUDONYM_KEY:-demo-only-key-$(hostname)}"
.venv/bin/audience --landing "$AUDIENCE_LANDING" generate --date "$start" --days "$days" \
  --messages "$messages" --users "$users" --events "$events" --topic-skew 1
# One warm engine for every date (what a deployment that sets AUDIENCE_ENGINE does); without it each
# DAG run starts and stops its own.
engine=$(.venv/bin/audience -q --profile airflow engine start)
trap '.venv/bin/audience -q engine stop --url "$engine" >/dev/null' EXIT
export AUDIENCE_ENGINE="$engine"
for n in $(seq 0 $((days - 1))); do
  day=$(date -u -d "$start + $n day" +%F)
  echo "== airflow dags test audience_nightly $day (log: airflow_home/demo-$day.log)"
  start_s=$(date +%s)
  if ! scripts/airflow.sh dags test audience_nightly "$day" >"$repo/airflow_home/demo-$day.log" 2>&1; then
    grep -E "\[error|Task failed|audience: " "$repo/airflow_home/demo-$day.log" | tail -5
    echo "DAG run for $day failed: see airflow_home/demo-$day.log" >&2
    exit 1
  fi
  grep -oE "\[[a-z]+( [A-Z,]+)?\] done .*s" "$repo/airflow_home/demo-$day.log" | grep -v "ingest [a-z_]*\]" || true
  echo "   DAG run succeeded in $(( $(date +%s) - start_s )) s"
done
.venv/bin/audience -q --landing "$AUDIENCE_LANDING" --warehouse "$AUDIENCE_WAREHOUSE" report --date "$day" --engine "$engine"
.venv/bin/audience -q --warehouse "$AUDIENCE_WAREHOUSE" report --from "$start" --to "$day" \
  --html "$repo/reports/audience-$start-$day.html" --engine "$engine"
echo "demo: $days dates generated and run through Airflow in $(( $(date +%s) - demo_start_s )) s"
