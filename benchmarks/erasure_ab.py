"""One night's erasures against a warehouse with history, twice on identical copies: as the tables
stand, and with deletion vectors on the tables that declare them (what new warehouses get, and
what maintenance turns on in older ones). Prints seconds and per-table files added and removed.

    .venv/bin/python benchmarks/erasure_ab.py WAREHOUSE [--requests 200] [--workdir /tmp/erasure-ab]

WAREHOUSE is left untouched (for example a `benchmarks/stages.py --copy-history 30` work folder's).
The requests are the accounts of users picked at random from the last date's user state, plus
as many message and conversation requests, received the day after that date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from pathlib import Path

from pyspark.sql import functions as F

from jobs import tables as t
from jobs.cli.common import render_table
from jobs.config import load_config
from jobs.io import replace_partition
from jobs.privacy.requests import apply_erasures
from jobs.session import build_spark


def _requests(spark, cfg, n: int):
    """The night after the last stored date, and its requests (as ingest stores them)."""
    state = spark.read.format("delta").load(t.USER_STATE.path(cfg.warehouse))
    last = state.agg(F.max("state_date")).first()[0]
    day = last + dt.timedelta(days=1)
    users = state.where(F.col("state_date") == F.lit(last)).select("user_key").orderBy(F.rand(7)).limit(n)
    chats = (
        spark.read.format("delta").load(t.CHAT_MESSAGES.path(cfg.warehouse)).where(F.col("ingest_date") == F.lit(last))
    )
    picked = chats.orderBy(F.rand(11)).limit(n).select("user_key", "message_id", "conversation_id").collect()
    rows = [(f"acc-{i}", r.user_key, "account", None) for i, r in enumerate(users.collect())]
    rows += [(f"msg-{i}", r.user_key, "message", r.message_id) for i, r in enumerate(picked[: n // 2])]
    rows += [(f"conv-{i}", r.user_key, "conversation", r.conversation_id) for i, r in enumerate(picked[n // 2 :])]
    at = dt.datetime.combine(day, dt.time(1), dt.timezone.utc)
    frame = spark.createDataFrame(
        [(rid, key, scope, target, at, "erasure_ab", day) for rid, key, scope, target in rows],
        t.ERASURE_REQUESTS.schema,
    )
    return day, frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("warehouse")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workdir", default="/tmp/erasure-ab")
    args = parser.parse_args()
    work = Path(args.workdir)
    results = []
    spark = None
    for variant in ("as stored", "deletion vectors"):
        copy = work / "warehouse"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(args.warehouse, copy)
        cfg = load_config(profile="local", warehouse=copy, landing=work / "landing")
        spark = spark or build_spark(cfg, "erasure-ab")
        day, requests = _requests(spark, cfg, args.requests)
        replace_partition(requests, t.ERASURE_REQUESTS, copy, {"ingest_date": day})
        if variant == "deletion vectors":
            for table in t.ALL_TABLES:
                if table.deletion_vectors and (Path(table.path(copy)) / "_delta_log").is_dir():
                    path = table.path(copy)
                    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
        start = time.monotonic()
        applied, _ = apply_erasures(spark, cfg, day, "erasure-ab")
        seconds = time.monotonic() - start
        files = {"added": 0, "removed": 0, "vectors": 0}
        for table in t.ALL_TABLES:
            if not (Path(table.path(copy)) / "_delta_log").is_dir():
                continue
            last_commit = spark.sql(f"DESCRIBE HISTORY delta.`{table.path(copy)}` LIMIT 1").first()
            if last_commit.operation == "MERGE":
                m = last_commit.operationMetrics
                files["added"] += int(m.get("numTargetFilesAdded", 0))
                files["removed"] += int(m.get("numTargetFilesRemoved", 0))
                files["vectors"] += int(m.get("numTargetDeletionVectorsAdded", 0))
        rows = sum(r["rows_removed"] for r in applied)
        results.append(
            {
                "variant": variant,
                "seconds": round(seconds, 1),
                "requests": len(applied),
                "rows_removed": rows,
                "files_rewritten": files["removed"],
                "files_written": files["added"],
                "deletion_vectors": files["vectors"],
            }
        )
        print(render_table(results[-1:], list(results[-1])), flush=True)
    print(render_table(results, list(results[0])))
    print(f"as stored / deletion vectors: {results[0]['seconds'] / results[1]['seconds']:.1f}x")


if __name__ == "__main__":
    main()
