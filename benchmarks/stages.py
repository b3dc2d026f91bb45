"""Where a night's time goes: one logical date at a given size, per stage and per quality gate,
wall seconds, rows, rows per second and storage bytes read and written, printed as tables and
optionally written as JSON, so that the next change can be compared with this one. Not part of the
test suite.

    .venv/bin/python benchmarks/stages.py --messages 1000000 --events 500000 [--history-days 0]
        [--copy-history N [--double-history]] [--io-floor] [--naive] [--duckdb] [--vocabulary-only]
        [--airflow] [--json out.json] [--workdir /tmp/audience-bench]
    make bench SF=1            # --sf 1 --copy-history 30 --double-history --io-floor
    make bench-compare SF=0.1  # --sf 0.1 --history-days 2 --io-floor --vocabulary-only --naive --duckdb

- `--sf F`: the scale factor, F x 1M chat messages and F x 5M engagement events a day, F x 100k
  users. Landing data of `history-days + 1` days is generated once per size under the work folder
  (kept for the next call); the warehouse starts empty, the history nights run untimed, then the
  measured night.
- `--copy-history N` adds N earlier dates to every dated table by copying the last history night's
  partitions (a month of history in minutes rather than a month of nights; erasure requests and
  their log are not copied). `--double-history` then re-runs the night, copies N dates more, and
  re-runs it again: what doubling the history costs.
- From the session's Spark event log (under the work folder): bytes read and written per step, and
  the night's Spark jobs by step and what started them (Python call site, or the SQL execution:
  a write, a Delta snapshot), longest first. The driver's peak memory is the JVM's and Python's
  peak resident set.
- Side by side on the same data: `--io-floor` (in the same warm session after the night, reading the
  night's landing files as ingest does and writing them as Delta: what no pipeline can avoid),
  `--naive` (benchmarks/naive.py on a copy of the warehouse as it stood before the night) and
  `--duckdb` (benchmarks/duckdb_core.py from the landing files), with their segment members checked
  against ours. Those two tag with the vocabulary alone: `--vocabulary-only` makes ours do the same.
- `--airflow` runs the same date again through the nightly DAG (`airflow dags test`: its own engine,
  each stage a process joining it) and reports its wall time beside the command line's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from jobs import REPO_ROOT
from jobs.bronze.contract import DATASETS
from jobs.bronze.stage import day_folder, read_landing
from jobs.cli.common import render_table
from jobs.config import load_config
from jobs.io import path_exists
from jobs.pipeline import run_date
from jobs.progress import Progress
from jobs.sample.generate import GenerateOptions, generate
from jobs.session import build_spark
from jobs.tables import ALL_TABLES, ERASURE_LOG, ERASURE_REQUESTS

START = dt.date(2025, 12, 16)


def landing_for(args, root: Path, topic_ids: list[str]) -> Path:
    """Generated once per size: the folder's name carries the generator's parameters."""
    landing = root / f"landing-m{args.messages}-e{args.events}-u{args.users}-d{args.history_days + 1}"
    if not (landing / "_generator" / "complete").exists():
        shutil.rmtree(landing, ignore_errors=True)
        opts = GenerateOptions(
            start=START,
            days=args.history_days + 1,
            messages_per_day=args.messages,
            events_per_day=args.events,
            users=args.users,
            topic_skew=1.0,
        )
        generate(landing, opts, topic_ids)
        (landing / "_generator" / "complete").touch()
    return landing


def airflow_seconds(cfg, landing: Path, day: dt.date, root: Path) -> tuple[float, dict]:
    """Wall seconds of `airflow dags test` for the date, and each task's stage line seconds."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AUDIENCE_LANDING": str(landing),
        "AUDIENCE_WAREHOUSE": str(cfg.warehouse),
        "AUDIENCE_PSEUDONYM_KEY": os.environ.get("AUDIENCE_PSEUDONYM_KEY", "benchmark-only-key"),
    }
    start = time.monotonic()
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "airflow.sh"), "dags", "test", "audience_nightly", day.isoformat()],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - start
    if done.returncode:
        raise SystemExit(f"airflow run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    steps = {m[0]: float(m[1]) for m in re.findall(r"\[([a-z ]+)\] done .*? ([\d.]+)s", done.stdout + done.stderr)}
    return seconds, steps


def io_floor_seconds(spark, cfg, day: dt.date, out: Path) -> float:
    """Read the date's landing files of every dataset as ingest reads them and write them as Delta."""
    shutil.rmtree(out, ignore_errors=True)  # new tables, as the night's bronze were
    start = time.monotonic()
    for ds in DATASETS:
        folder = day_folder(cfg, ds.name, day)
        if path_exists(folder):
            read_landing(spark, ds, folder).write.format("delta").mode("overwrite").save(str(out / ds.name))
    return time.monotonic() - start


def copy_history(spark, cfg, source: dt.date, days: int, skip: int = 0) -> None:
    """Every dated table's partition of `source` copied to the `days` dates before it (after
    skipping the `skip` dates right before it)."""
    from pyspark.sql import functions as F

    for table in ALL_TABLES:
        date_col = next((c for c in table.partition_by if c.endswith("_date")), None)
        path = table.path(cfg.warehouse)
        if date_col is None or table in (ERASURE_REQUESTS, ERASURE_LOG) or not path_exists(path):
            continue
        night = spark.read.format("delta").load(path).where(F.col(date_col) == F.lit(source))
        back = spark.range(skip + 1, skip + days + 1).select(F.col("id").cast("int").alias("_back"))
        copies = night.crossJoin(back).withColumn(date_col, F.date_sub(F.col(date_col), F.col("_back")))
        copies.drop("_back").write.format("delta").mode("append").save(path)


def event_log_figures(log_dir: Path, steps: list[dict]) -> tuple[dict, list[dict]]:
    """From the session's Spark event log: storage bytes read and written per step of the table (by
    the tasks that finished inside it), and the night's Spark jobs grouped by the innermost step
    (sub-steps such as `ingest chat_messages` included) and what started them (the Python call
    site, else the SQL execution's description: a write, a Delta snapshot), longest first."""

    def window(s):
        return s["step"], s["started_at"], s["started_at"] + s["seconds"]

    def step_at(seconds: float, windows) -> str | None:
        inside = [(end - start, name) for name, start, end in windows if start <= seconds <= end]
        return min(inside)[1] if inside else None

    top = [window(s) for s in steps if "started_at" in s and (" " not in s["step"] or s["step"].startswith("gate "))]
    every = [window(s) for s in steps if "started_at" in s]
    totals = {name: {"read": 0, "written": 0} for name, _, _ in top}
    executions, started, sites = {}, {}, {}
    for log in sorted(p for p in log_dir.rglob("events_*") if p.is_file()):  # Spark 4: eventlog_v2_<app>/
        with log.open() as lines:
            for line in lines:
                if '"SparkListenerTaskEnd"' in line:
                    event = json.loads(line)
                    step = step_at(event["Task Info"]["Finish Time"] / 1000, top)
                    metrics = event.get("Task Metrics") or {}
                    if step:
                        totals[step]["read"] += metrics.get("Input Metrics", {}).get("Bytes Read", 0)
                        totals[step]["written"] += metrics.get("Output Metrics", {}).get("Bytes Written", 0)
                elif "SparkListenerSQLExecutionStart" in line:
                    event = json.loads(line)
                    executions[event["executionId"]] = event["description"]
                elif '"SparkListenerJobStart"' in line:
                    event = json.loads(line)
                    props = event["Properties"]
                    root = int(props.get("spark.sql.execution.root.id", props.get("spark.sql.execution.id", -1)))
                    site = props.get("callSite.short") or executions.get(root) or props.get("spark.job.description")
                    started[event["Job ID"]] = (event["Submission Time"], site or "?")
                elif '"SparkListenerJobEnd"' in line:
                    event = json.loads(line)
                    submitted, site = started.pop(event["Job ID"], (None, "?"))
                    step = step_at(submitted / 1000, every) if submitted else None
                    if step:
                        entry = sites.setdefault((step, site), [0, 0])
                        entry[0] += 1
                        entry[1] += event["Completion Time"] - submitted
    hot = sorted(sites.items(), key=lambda item: -item[1][1])
    return totals, [
        {"step": step, "started_by": site[:90], "jobs": jobs, "seconds": round(ms / 1000, 1)}
        for (step, site), (jobs, ms) in hot
    ]


def peak_memory_mb(spark) -> dict[str, int]:
    """Peak resident set of the driver's JVM (its /proc status) and of this Python process."""
    import resource

    jvm_pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    status = Path(f"/proc/{jvm_pid}/status").read_text()
    jvm_kb = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
    return {"jvm": jvm_kb // 1024, "python": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


class VocabularyOnly:
    """Stands in for the learned tagger model (`--vocabulary-only`): predicts no label, so the
    vocabulary alone tags, as the naive and DuckDB pipelines do."""

    version = "vocabulary-only"

    def predict(self, frame, id_col: str, _text_col: str):
        from pyspark.sql import functions as F

        none = F.array().cast("array<string>")
        return frame.select(id_col, none.alias("ml_topics"), none.alias("ml_sensitive"))


def use_vocabulary_only() -> None:
    from jobs.silver import tagger_model

    tagger_model.load = lambda _path: VocabularyOnly()
    tagger_model.version_at = lambda _path: VocabularyOnly.version


def member_differences(spark, day: dt.date, ours: Path, theirs: Path) -> tuple[int, int, int]:
    """(members, missing from theirs, extra in theirs) of the date's published segments."""
    from pyspark.sql import functions as F

    from jobs.tables import AUDIENCE_SEGMENTS

    def members(warehouse):
        frame = spark.read.format("delta").load(AUDIENCE_SEGMENTS.path(warehouse))
        return frame.where(F.col("snapshot_date") == F.lit(day)).select("region", "segment_id", "user_key")

    a, b = members(ours), members(theirs)
    return a.count(), a.exceptAll(b).count(), b.exceptAll(a).count()


def duckdb_figures(landing: Path, day: dt.date, warehouse: Path, out: Path) -> dict:
    """benchmarks/duckdb_core.py on the same landing for the date, its members checked against ours."""
    script = Path(__file__).with_name("duckdb_core.py")
    args = ["--landing", landing, "--date", day.isoformat(), "--compare-warehouse", warehouse, "--json", out]
    done = subprocess.run([sys.executable, script, *map(str, args)], capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: members differ, reported in the table
        raise SystemExit(f"duckdb_core.py failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def mb(n: int | None) -> float | None:
    return round(n / 1e6, 1) if n is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, help="scale factor: sets messages, events and users (SF1: 1M, 5M, 100k)")
    parser.add_argument("--messages", type=int, default=20_000, help="chat messages per day")
    parser.add_argument("--events", type=int, default=200_000, help="engagement events per day")
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--history-days", type=int, default=0, help="nights run (untimed) before the measured one")
    parser.add_argument("--copy-history", type=int, default=0, help="earlier dates copied from the last history night")
    parser.add_argument("--airflow", action="store_true", help="also run the date through the Airflow DAG")
    parser.add_argument("--io-floor", action="store_true", help="also time reading the landing and writing it as Delta")
    parser.add_argument(
        "--double-history", action="store_true", help="re-run the night, copy as many dates again, re-run it"
    )
    parser.add_argument("--naive", action="store_true", help="also run the night as benchmarks/naive.py writes it")
    parser.add_argument("--duckdb", action="store_true", help="also run benchmarks/duckdb_core.py on the landing")
    parser.add_argument(
        "--vocabulary-only", action="store_true", help="tag without the learned model (as naive, DuckDB)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audience-bench"))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.double_history and not args.copy_history:
        parser.error("--double-history doubles the copied history: give --copy-history N too")
    # one key for the product, its Airflow run and DuckDB's, so their user keys compare
    os.environ.setdefault("AUDIENCE_PSEUDONYM_KEY", "benchmark-only-key")
    if args.sf:
        args.messages, args.events, args.users = (int(args.sf * n) for n in (1_000_000, 5_000_000, 100_000))
    args.history_days = max(args.history_days, 1 if args.copy_history else 0)
    if args.vocabulary_only:
        use_vocabulary_only()

    root = args.workdir.absolute()
    base = load_config()
    landing = landing_for(args, root, [t.topic_id for t in base.targetable_topics])
    warehouse = root / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    shutil.rmtree(root / "data_docs", ignore_errors=True)
    cfg = load_config(landing=landing, warehouse=warehouse)
    days = [START + dt.timedelta(days=n) for n in range(args.history_days + 1)]

    event_log = root / "event-log"
    shutil.rmtree(event_log, ignore_errors=True)
    event_log.mkdir(parents=True)
    start = time.monotonic()
    spark = build_spark(
        cfg,
        "audience-bench",
        extra={
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": event_log.as_uri(),
            "spark.eventLog.compress": "false",
        },
    )
    session_seconds = time.monotonic() - start
    for day in days[:-1]:
        run_date(spark, cfg, day, Progress(quiet=True))
    if args.copy_history:
        copy_history(spark, cfg, days[-2], args.copy_history)
    naive_cfg = load_config(landing=landing, warehouse=root / "warehouse-naive")
    if args.naive:
        shutil.rmtree(naive_cfg.warehouse, ignore_errors=True)
        if warehouse.exists():  # no history nights: both start empty
            shutil.copytree(warehouse, naive_cfg.warehouse)
    progress = Progress()
    night = time.monotonic()
    run_date(spark, cfg, days[-1], progress)
    night_seconds = time.monotonic() - night
    floor = io_floor_seconds(spark, cfg, days[-1], root / "io-floor") if args.io_floor else None
    if args.naive:
        from naive import naive_night  # benchmarks/, this script's folder

        start = time.monotonic()
        naive_night(spark, naive_cfg, days[-1])
        naive_seconds = time.monotonic() - start
        naive_members = member_differences(spark, days[-1], warehouse, naive_cfg.warehouse)
    if args.duckdb:  # before any re-run: the warehouse as the night left it
        duck = duckdb_figures(landing, days[-1], warehouse, root / "duckdb.json")
    if args.double_history:  # a re-run of the date before and after the copy, so both are re-runs
        rerun_seconds = []
        for skip in (None, args.copy_history):
            if skip:
                copy_history(spark, cfg, days[-2], args.copy_history, skip=skip)
            start = time.monotonic()
            run_date(spark, cfg, days[-1], Progress(quiet=True))
            rerun_seconds.append(time.monotonic() - start)
    peak = peak_memory_mb(spark)
    spark.stop()

    steps = [{"step": "session start", "rows": None, "seconds": session_seconds}]
    steps += [s for s in progress.finished if " " not in s["step"] or s["step"].startswith("gate ")]
    io, hot_spots = event_log_figures(event_log, progress.finished)
    rows = [
        {
            "step": s["step"],
            "seconds": round(s["seconds"], 1),
            "rows": s["rows"],
            "rows_per_s": int(s["rows"] / s["seconds"]) if s["rows"] and s["seconds"] else None,
            "share": f"{s['seconds'] / (night_seconds + session_seconds):.0%}",
            "read_mb": mb(io.get(s["step"], {}).get("read")),
            "written_mb": mb(io.get(s["step"], {}).get("written")),
        }
        for s in steps
    ]
    gates = sum(s["seconds"] for s in steps if s["step"].startswith("gate "))
    figures = {
        "date": days[-1].isoformat(),
        "size": {
            "messages": args.messages,
            "events": args.events,
            "users": args.users,
            "history_days": args.history_days + args.copy_history,
        },
        "cores": os.cpu_count(),
        "steps": rows,
        "night_seconds": round(night_seconds, 1),
        "cli_seconds": round(night_seconds + session_seconds, 1),
        "gates_share": round(gates / night_seconds, 3),
        "driver_peak_mb": peak,
        "hot_spots": hot_spots[:15],
    }
    print(render_table(rows, ["step", "seconds", "rows", "rows_per_s", "share", "read_mb", "written_mb"]))
    print(
        f"\nnight {night_seconds:.1f}s + session {session_seconds:.1f}s; quality gates "
        f"{gates:.1f}s ({figures['gates_share']:.0%} of the night); driver peak resident memory: "
        f"JVM {peak['jvm']:,} MB, Python {peak['python']:,} MB"
    )
    print("\nthe night's Spark jobs by step and what started them, longest first (from the event log):")
    print(render_table(hot_spots[:12], ["step", "started_by", "jobs", "seconds"]))
    compared = [{"pipeline": "ours (this night)", "seconds": round(night_seconds, 1), "members": "-"}]
    if floor is not None:
        compared.insert(0, {"pipeline": "I/O floor (landing read, written as Delta)", "seconds": round(floor, 1)})
        figures.update(io_floor_seconds=round(floor, 1), night_over_floor=round(night_seconds / floor, 2))
    if args.naive:
        members, missing, extra = naive_members
        compared.append({"pipeline": "naive (benchmarks/naive.py)", "seconds": round(naive_seconds, 1)})
        compared[-1]["members"] = f"{members - missing:,} same, {missing} missing, {extra} extra"
        figures.update(naive_seconds=round(naive_seconds, 1), naive_over_ours=round(naive_seconds / night_seconds, 2))
        figures["naive_members"] = {"members": members, "missing": missing, "extra": extra}
    if args.duckdb:
        check = duck["comparison"]["members"]
        compared.append({"pipeline": "DuckDB (benchmarks/duckdb_core.py)", "seconds": duck["duckdb_seconds"]})
        compared[-1]["members"] = f"{check['matching']:,} same, {check['missing']} missing, {check['extra']} extra"
        figures.update(
            duckdb_seconds=duck["duckdb_seconds"], ours_over_duckdb=round(night_seconds / duck["duckdb_seconds"], 1)
        )
        figures["duckdb_members"] = check
    if len(compared) > 1:
        print("\nthe same night, side by side:")
        print(render_table(compared, ["pipeline", "seconds", "members"]))
        ratios = {"night_over_floor": "ours/floor", "naive_over_ours": "naive/ours", "ours_over_duckdb": "ours/DuckDB"}
        print("; ".join(f"{label} {figures[key]}x" for key, label in ratios.items() if key in figures))
    if args.double_history:
        figures["rerun_seconds"], figures["rerun_doubled_history_seconds"] = (round(x, 1) for x in rerun_seconds)
        figures["doubled_history_ratio"] = round(rerun_seconds[1] / rerun_seconds[0], 3)
        print(
            f"the night re-run with {args.copy_history + args.history_days} days of history: {rerun_seconds[0]:.1f}s;"
            f" with {2 * args.copy_history + args.history_days}: {rerun_seconds[1]:.1f}s "
            f"({figures['doubled_history_ratio']}x)"
        )
    if args.airflow:
        seconds, tasks = airflow_seconds(cfg, landing, days[-1], root)
        figures["airflow_seconds"] = round(seconds, 1)
        figures["airflow_steps"] = tasks
        figures["airflow_over_cli"] = round(seconds / figures["cli_seconds"], 2)
        print(f"airflow dags test of the same date: {seconds:.1f}s ({figures['airflow_over_cli']}x the command line)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures: {args.json}")


if __name__ == "__main__":
    main()
