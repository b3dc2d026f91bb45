"""Where a night's time goes: one logical date at a given size, per stage and per quality gate,
wall seconds, rows and rows per second, printed as a table and optionally written as JSON, so that
the next change can be compared with this one. Not part of the test suite.

    .venv/bin/python benchmarks/stages.py --messages 1000000 --events 500000 [--history-days 0]
        [--airflow] [--io-floor] [--json out.json] [--workdir /tmp/audience-bench]

Sample landing data of `history-days + 1` days is generated once per size under the work folder
(kept for the next call); the warehouse starts empty, the history nights run untimed, then the
measured night. `--airflow` runs the same date again through the nightly DAG (`airflow dags test`:
its own engine, each stage a process joining it) and reports its wall time beside the command line's.
`--io-floor` times, in the same warm session after the night, what no pipeline can avoid: reading the
night's landing files as ingest does and writing them as Delta, and reports the night over that floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="chat messages per day")
    parser.add_argument("--events", type=int, default=200_000, help="engagement events per day")
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--history-days", type=int, default=0, help="nights run (untimed) before the measured one")
    parser.add_argument("--airflow", action="store_true", help="also run the date through the Airflow DAG")
    parser.add_argument("--io-floor", action="store_true", help="also time reading the landing and writing it as Delta")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audience-bench"))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    root = args.workdir.absolute()
    base = load_config()
    landing = landing_for(args, root, [t.topic_id for t in base.targetable_topics])
    warehouse = root / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    shutil.rmtree(root / "data_docs", ignore_errors=True)
    cfg = load_config(landing=landing, warehouse=warehouse)
    days = [START + dt.timedelta(days=n) for n in range(args.history_days + 1)]

    start = time.monotonic()
    spark = build_spark(cfg, "audience-bench")
    session_seconds = time.monotonic() - start
    for day in days[:-1]:
        run_date(spark, cfg, day, Progress(quiet=True))
    progress = Progress()
    night = time.monotonic()
    run_date(spark, cfg, days[-1], progress)
    night_seconds = time.monotonic() - night
    floor = io_floor_seconds(spark, cfg, days[-1], root / "io-floor") if args.io_floor else None
    spark.stop()

    steps = [{"step": "session start", "rows": None, "seconds": session_seconds}]
    steps += [s for s in progress.finished if " " not in s["step"] or s["step"].startswith("gate ")]
    rows = [
        {
            "step": s["step"],
            "seconds": round(s["seconds"], 1),
            "rows": s["rows"],
            "rows_per_s": int(s["rows"] / s["seconds"]) if s["rows"] and s["seconds"] else None,
            "share": f"{s['seconds'] / (night_seconds + session_seconds):.0%}",
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
            "history_days": args.history_days,
        },
        "cores": os.cpu_count(),
        "steps": rows,
        "night_seconds": round(night_seconds, 1),
        "cli_seconds": round(night_seconds + session_seconds, 1),
        "gates_share": round(gates / night_seconds, 3),
    }
    print(render_table(rows, ["step", "seconds", "rows", "rows_per_s", "share"]))
    print(
        f"\nnight {night_seconds:.1f}s + session {session_seconds:.1f}s; quality gates "
        f"{gates:.1f}s ({figures['gates_share']:.0%} of the night)"
    )
    if floor is not None:
        figures["io_floor_seconds"] = round(floor, 1)
        figures["night_over_floor"] = round(night_seconds / floor, 2)
        print(
            f"I/O floor (landing read and written as Delta, same session): {floor:.1f}s; "
            f"the night is {figures['night_over_floor']}x that"
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
