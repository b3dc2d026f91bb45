#!/usr/bin/env bash
# Object storage on this machine: the `s3` profile of conf/pipeline.yaml against an S3 API server on
# 127.0.0.1 (moto's, from PyPI; no real bucket needed). A generated date is uploaded to
# s3a://audience-landing/landing, the nightly runs for it through the command line with the
# warehouse at s3a://audience-lake/warehouse, and the published audience is read back by name
# from the bucket. The server is stopped whatever happens. Needs `make s3-jars` (the connector).
# Work folder: $S3_WORK (default /tmp/audience-s3).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
work="${S3_WORK:-/tmp/audience-s3}"
day="${S3_DATE:-2025-12-16}"
port="${S3_PORT:-5055}"
export SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$repo/.venv/bin/python"
export AUDIENCE_PSEUDONYM_KEY="${AUDIENCE_PSEUDONYM_KEY:-s3-check-only-key}"
# What a deployment sets for its store: here moto's fixed test credentials and local endpoint.
export AWS_ACCESS_KEY_ID=s3-check AWS_SECRET_ACCESS_KEY=s3-check AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AUDIENCE_S3_PATH_STYLE=true
export SPARK_MASTER="local[2]" AUDIENCE_SHUFFLE_PARTITIONS=8  # a cluster's 200 would write 200 files per table
export AUDIENCE_LANDING=s3a://audience-landing/landing AUDIENCE_WAREHOUSE=s3a://audience-lake/warehouse
rm -rf "$work" && mkdir -p "$work"
started=$(date +%s)

# moto in an environment of its own (its botocore wants an older python-dateutil than Airflow's)
.venv/bin/uv tool run --from 'moto[server]' moto_server -H 127.0.0.1 -p "$port" >"$work/s3.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 240); do
  curl -fs "$AWS_ENDPOINT_URL" >/dev/null && break
  sleep 0.5
done

echo "== a generated date uploaded to $AUDIENCE_LANDING"
.venv/bin/audience -q --profile test --landing "$work/landing" generate --date "$day" --messages 3000 \
  --events 60000 --users 4000 --topic-skew 1 >/dev/null
.venv/bin/python - "$work/landing" <<'EOF'
import os
import sys

from pyarrow import fs

s3 = fs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"], allow_bucket_creation=True)
for bucket in ("audience-landing", "audience-lake"):
    s3.create_dir(bucket)
fs.copy_files(sys.argv[1], "audience-landing/landing", source_filesystem=fs.LocalFileSystem(), destination_filesystem=s3)
print(f"{len(s3.get_file_info(fs.FileSelector('audience-landing/landing', recursive=True)))} objects uploaded")
EOF

echo "== audience run --profile s3 --date $day"
.venv/bin/audience run --profile s3 --date "$day" 2>&1 | tee "$work/run.log" | grep -E "^\[[a-z ]+\] done|rror" || true
grep -q "^\[publish\] done" "$work/run.log" || { echo "s3-check: the run did not publish (log $work/run.log)" >&2; exit 1; }

echo "== tables in the bucket, and the published audience read back by name"
.venv/bin/python - <<'EOF'
import os

from pyarrow import fs

s3 = fs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"])
logs = [i.path for i in s3.get_file_info(fs.FileSelector("audience-lake/warehouse", recursive=True)) if i.path.endswith("/_delta_log")]
print(f"{len(logs)} Delta tables under s3a://audience-lake/warehouse")
EOF
.venv/bin/audience sql --profile s3 \
  "SELECT region, count(DISTINCT segment_id) AS segments, count(*) AS members FROM gold.audience_segments GROUP BY region ORDER BY region"
echo "s3-check passed in $(($(date +%s) - started)) s"
