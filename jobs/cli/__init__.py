"""`audience`: the command line of the pipeline (SPEC section 9)."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import os
import sys
import traceback
from pathlib import Path

from jobs import REPO_ROOT
from jobs.cli import nightly, sql, tools
from jobs.errors import AudienceError
from jobs.registry import NAMES


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad date {text!r}: expected YYYY-MM-DD") from None


def _common_options(default) -> argparse.ArgumentParser:
    """Options accepted before or after the subcommand (`audience run --date D --landing X`). After
    it, their default is SUPPRESS, so that an absent one keeps the value given before it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--conf", default=default, help="conf folder (default: ./conf of the package, or $AUDIENCE_CONF)"
    )
    common.add_argument("--landing", default=default, help="landing root (overrides the profile)")
    common.add_argument("--warehouse", default=default, help="warehouse root (overrides the profile)")
    common.add_argument(
        "--profile",
        default=default,
        help="conf profile: local, test, airflow, cluster, s3 (default from conf or $AUDIENCE_PROFILE)",
    )
    common.add_argument("-q", "--quiet", action="store_true", default=default or False, help="no progress lines")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audience", description=__doc__, parents=[_common_options(None)])
    subparsers = parser.add_subparsers(dest="command", required=True)
    add = functools.partial(subparsers.add_parser, parents=[_common_options(argparse.SUPPRESS)])

    p = add("generate", help="write sample landing data")
    p.add_argument("--date", type=_date, default=dt.date(2025, 12, 16), help="first day (YYYY-MM-DD)")
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--messages", type=int, default=20_000, help="chat messages per day")
    p.add_argument("--users", type=int, help="user base (default: one per 8 messages, at least 300)")
    p.add_argument("--events", type=int, help="engagement events per day (default: half the messages)")
    p.add_argument("--topic-skew", type=float, default=0.0, help="interest popularity 1/rank**skew (0: uniform)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--bad-rate", type=float, default=0.01)
    p.add_argument("--duplicate-rate", type=float, default=0.01)
    p.add_argument("--late-rate", type=float, default=0.05)
    p.set_defaults(func=nightly.cmd_generate)

    p = add("run", help="run the nightly flow for one logical date")
    p.add_argument("--date", type=_date, required=True)
    p.set_defaults(func=nightly.cmd_run)

    p = add("backfill", help="run the nightly flow for every date of a range, in order")
    p.add_argument("--start", type=_date, required=True)
    p.add_argument("--end", type=_date, required=True)
    p.set_defaults(func=nightly.cmd_backfill)

    p = add("stage", help="run one stage for one date (what each Airflow task does)")
    p.add_argument("stage", choices=NAMES)
    p.add_argument("--date", type=_date, required=True)
    p.add_argument("--region", action="append", help="segments: only this region (repeatable)")
    p.add_argument("--run-id", help="run id recorded in the tables (Airflow passes its own)")
    p.add_argument("--engine", metavar="URL", help="run in this warm engine (sc://localhost:PORT, `audience engine`)")
    p.set_defaults(func=nightly.cmd_stage)

    p = add("engine", help="a warm Spark engine (Spark Connect) that stage processes share")
    p.add_argument("action", choices=("start", "stop", "serve"))
    p.add_argument("--port", type=int, help="start, serve: its port (default for start: a free one)")
    p.add_argument("--master", help="start, serve: Spark master (default: the profile's)")
    p.add_argument("--url", help="stop: the URL `start` printed")
    p.add_argument("--max-hours", type=float, default=12.0, help="serve: stop by itself after this long")
    p.set_defaults(func=nightly.cmd_engine)

    p = add("validate", help="re-run the quality suites on a date's stored tables")
    p.add_argument("--date", type=_date, required=True)
    p.add_argument("--table", help="only this table's suite, e.g. gold.audience_segments")
    p.set_defaults(func=nightly.cmd_validate)

    p = add("report", help="print a date's reconciliation and per-region segments, or write charts of dates as HTML")
    p.add_argument("--date", type=_date, help="the date of the printed report")
    p.add_argument("--from", dest="first", type=_date, help="with --html: the first date charted")
    p.add_argument("--to", dest="last", type=_date, help="with --html: the last date charted")
    p.add_argument("--html", metavar="FILE", help="write one self-contained HTML file with charts")
    p.add_argument("--engine", metavar="URL", help="read through this warm engine (`audience engine`)")
    p.set_defaults(func=nightly.cmd_report)

    p = add("maintain", help="retention, OPTIMIZE and VACUUM of every table")
    p.add_argument("--date", type=_date, default=dt.date.today(), help="the day retention is counted from")
    p.set_defaults(func=nightly.cmd_maintain)

    p = add("erasure-audit", help="find data of erasure requests past their deadline, on disk too")
    p.add_argument("--date", type=_date, default=dt.date.today(), help="the day deadlines are counted to")
    p.set_defaults(func=nightly.cmd_erasure_audit)

    p = add("redact", help="redact PII from JSON lines on stdin, or evaluate against a labelled corpus")
    p.add_argument("--evaluate", metavar="FILE", help="labelled JSON lines: per-kind recall and false positives")
    p.set_defaults(func=tools.cmd_redact)

    p = add("tag", help="tag JSON lines from stdin with topics and sensitive categories")
    p.add_argument(
        "--evaluate",
        metavar="PATH",
        help="labelled JSON lines (a file, or a folder of *.jsonl): "
        "report precision, recall and the sensitive confusion",
    )
    p.add_argument(
        "--split",
        choices=("all", "train", "dev", "test"),
        default="all",
        help="with --evaluate: only this split of the corpus (fixed rule on the id)",
    )
    p.set_defaults(func=tools.cmd_tag)

    p = add("train-tagger", help="train the learned sensitive and topic detector from a labelled corpus")
    p.add_argument(
        "--corpus",
        default=str(REPO_ROOT / "models" / "tagger_corpus"),
        help="folder of labelled *.jsonl files (default: models/tagger_corpus)",
    )
    p.add_argument(
        "--out",
        default=str(REPO_ROOT / "models" / "tagger"),
        help="where the versioned model folder is written (default: models/tagger)",
    )
    p.set_defaults(func=tools.cmd_train_tagger)

    p = add("demo", help="generate sample days and run them (the main job on the embedded default)")
    p.add_argument("--start", type=_date, default=dt.date(2025, 12, 16))
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=nightly.cmd_demo)

    p = add("sql", help="run SQL over the registered tables (<layer>.<table>)")
    p.add_argument("query")
    p.add_argument("--limit", type=int, help="at most this many rows (default: 50 as a table, all as CSV or JSON)")
    p.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="table (default), CSV, or JSON lines"
    )
    p.set_defaults(func=sql.cmd_sql)

    p = add("serve-sql", help="a read-only JDBC/ODBC endpoint (Spark's Thrift server) over the registered tables")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=10000)
    p.add_argument("--max-hours", type=float, default=12.0, help="stop by itself after this long")
    p.set_defaults(func=sql.cmd_serve_sql)
    return parser


def main(argv=None) -> int:
    from jobs.progress import Progress

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="audience: %(levelname)s: %(message)s")
    progress = Progress(quiet=args.quiet)
    try:
        args.func(args, progress)
        return 0
    except AudienceError as exc:
        print(f"audience: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("audience: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a stack trace on the terminal: it goes to a log file
        log_dir = Path(os.environ.get("AUDIENCE_LOG_DIR", "logs"))
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"audience-{dt.datetime.now():%Y%m%dT%H%M%S}.log"
        log_file.write_text(traceback.format_exc())
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"audience: internal error: {type(exc).__name__}: {first} (details in {log_file})", file=sys.stderr)
        return 1
