#!/usr/bin/env bash
# A backfill of three dates driven by a real Airflow scheduler (LocalExecutor, SQLite), compared
# with `audience backfill` of the same dates: gold.audience_segments and gold.segment_catalog must
# hold the same rows. The last date fails first (its chat folder is held back), then it is cleared
# with `airflow tasks clear` once the folder is delivered, and the scheduler re-runs it.
# Everything lives under ./backfill-check (git-ignored); the processes are stopped at the end.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
root="$repo/backfill-check"
from="${BACKFILL_FROM:-2025-12-16}"
to="${BACKFILL_TO:-2025-12-18}"
port="${BACKFILL_API_PORT:-8299}"  # 8793 is the scheduler's log server
rm -rf "$root" && mkdir -p "$root"
export AIRFLOW_HOME="$root/airflow_home" AUDIENCE_LANDING="$root/landing" AUDIENCE_WAREHOUSE="$root/warehouse"
export AUDIENCE_PSEUDONYM_KEY="${AUDIENCE_PSEUDONYM_KEY:-backfill-check-key-$(hostname)}"  # tasks refuse the dev key
export AIRFLOW__API__PORT="$port" AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$port/execution/"
export AUDIENCE_RETRY_DELAY_SECONDS=10
days=$(( ( $(date -u -d "$to" +%s) - $(date -u -d "$from" +%s) ) / 86400 + 1 ))
.venv/bin/audience -q --landing "$AUDIENCE_LANDING" generate --date "$from" --days "$days" --messages "${BACKFILL_MESSAGES:-40000}" >/dev/null
held="$root/held-back-chat"
mv "$AUDIENCE_LANDING/chat_messages/date=$to" "$held"

scripts/airflow.sh dags reserialize >/dev/null 2>&1
pids=()
stop() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT
for component in api-server scheduler dag-processor; do
  scripts/airflow.sh "$component" >"$root/$component.log" 2>&1 &
  pids+=($!)
done
sleep 20
scripts/airflow.sh dags unpause audience_nightly >/dev/null 2>&1
scripts/airflow.sh dags pause audience_maintenance >/dev/null 2>&1 || true
# Runs are created for the logical dates in the range (02:00 UTC each, processing that calendar day).
# SQLite admits one writer: if the scheduler holds the lock ("database is locked"), try again.
for attempt in 1 2 3 4 5; do
  if scripts/airflow.sh backfill create --dag-id audience_nightly --from-date "$from" \
       --to-date "$(date -u -d "$to + 1 day" +%F)" --max-active-runs 1 >"$root/backfill-create.log" 2>&1; then
    break
  fi
  [ "$attempt" = 5 ] && { tail -3 "$root/backfill-create.log" >&2; exit 1; }
  sleep 15
done
wait_for_runs() {
  local start_s; start_s=$(date +%s)
  while true; do
    # Only the backfill's runs count (unpausing may also start the latest scheduled interval).
    states=$(scripts/airflow.sh dags list-runs audience_nightly -o json 2>/dev/null | .venv/bin/python -c '
import collections, json, sys
lines = [line for line in sys.stdin.read().splitlines() if line.startswith("[{") or line == "[]"]
runs = json.loads(lines[-1]) if lines else []
print(" ".join(f"{n} {s}" for s, n in collections.Counter(
    r["state"] for r in runs if r["run_id"].startswith("backfill__")).items()))')
    echo "[backfill] $(( $(date +%s) - start_s ))s runs: ${states:-none yet}"
    if [ -n "$states" ] && ! echo "$states" | grep -qE "queued|running"; then break; fi
    if [ $(( $(date +%s) - start_s )) -gt 3600 ]; then echo "timeout" >&2; exit 1; fi
    sleep 30
  done
}
wait_for_runs
echo "[backfill] first pass: $states (expected: $to failed, its chat folder was held back)"
echo "$states" | grep -q "1 failed" || { echo "expected exactly the held-back date to fail" >&2; exit 1; }
mv "$held" "$AUDIENCE_LANDING/chat_messages/date=$to"
# Failed and upstream-failed tasks of that date's run; its run goes back to queued.
scripts/airflow.sh tasks clear audience_nightly --start-date "$to" --end-date "${to}T23:59:59+00:00" \
  --only-failed --yes >"$root/tasks-clear.log" 2>&1
sleep 10
wait_for_runs
if echo "$states" | grep -q failed; then echo "a backfill run failed: see $root/*.log" >&2; exit 1; fi

.venv/bin/audience -q --landing "$AUDIENCE_LANDING" --warehouse "$root/cli-warehouse" backfill --start "$from" --end "$to"
.venv/bin/python - "$AUDIENCE_WAREHOUSE" "$root/cli-warehouse" <<'PY'
import sys
from deltalake import DeltaTable
def rows(wh, table):
    found = DeltaTable(f"{wh}/gold/{table}").to_pyarrow_table().to_pylist()
    return sorted(tuple(sorted((k, str(v)) for k, v in r.items() if k not in ("run_id", "published_at", "publication_id")))
                  for r in found)
same = True
for table in ("audience_segments", "segment_catalog"):
    a, b = rows(sys.argv[1], table), rows(sys.argv[2], table)
    dates = sorted({dict(r)["snapshot_date"] for r in a})
    print(f"gold.{table:<18} airflow {len(a):>6} rows  audience backfill {len(b):>6} rows  dates {dates}"
          f"  {'IDENTICAL' if a == b else 'DIFFERENT'}")
    same = same and a == b
sys.exit(0 if same else 1)
PY
