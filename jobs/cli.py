"""`audience`: the command line of the pipeline (SPEC section 9)."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import os
import re
import sys
import time
import traceback
from pathlib import Path

from jobs import REPO_ROOT
from jobs.errors import AudienceError
from jobs.registry import NAMES


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad date {text!r}: expected YYYY-MM-DD") from None


def render_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A plain aligned text table; numbers right-aligned with thousands separators."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])

    def fmt(v):
        if isinstance(v, bool) or v is None:
            return "" if v is None else str(v).lower()
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:,.3f}"
        return str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    numeric = [
        all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows if r.get(c) is not None)
        for c in columns
    ]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(
        v.rjust(w) if n else v.ljust(w)  # noqa: E731
        for v, w, n in zip(vals, widths, numeric)
    ).rstrip()
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _config(args):
    from jobs.config import load_config

    return load_config(args.conf, args.profile, args.landing, args.warehouse)


def _spark(cfg, app):
    from jobs.session import build_spark

    return build_spark(cfg, app)


def cmd_generate(args, progress):
    from jobs.sample.generate import GenerateOptions, generate

    cfg = _config(args)
    opts = GenerateOptions(
        start=args.date,
        days=args.days,
        messages_per_day=args.messages,
        seed=args.seed,
        bad_rate=args.bad_rate,
        duplicate_rate=args.duplicate_rate,
        late_rate=args.late_rate,
    )
    start = time.monotonic()
    manifests = generate(cfg.landing, opts, [t.topic_id for t in cfg.targetable_topics], progress)
    rows = [
        {
            "date": m["date"],
            "dataset": ds,
            "lines": v["lines"],
            "planted_bad": sum(n for k, n in v["planted"].items() if k != "duplicate"),
            "planted_duplicates": v["planted"].get("duplicate", 0),
        }
        for m in manifests
        for ds, v in m["datasets"].items()
    ]
    print(render_table(rows))
    print(f"\nwrote {cfg.landing} in {time.monotonic() - start:.1f}s")


def _segment_summary(spark, cfg, day) -> list[dict]:
    """Per region: published and suppressed segments, members, and where members' scores came from."""
    from pyspark.sql import functions as F

    from jobs.tables import AUDIENCE_SEGMENTS, SEGMENT_CATALOG

    catalog = (
        spark.read.format("delta")
        .load(SEGMENT_CATALOG.path(cfg.warehouse))
        .where(F.col("snapshot_date") == F.lit(day))
        .groupBy("region")
        .agg(
            F.sum((F.col("status") == "published").cast("int")).alias("published"),
            F.sum((F.col("status") != "published").cast("int")).alias("suppressed"),
        )
    )
    chat, eng = F.col("chat_score") > 0, F.col("engagement_score") > 0
    members = (
        spark.read.format("delta")
        .load(AUDIENCE_SEGMENTS.path(cfg.warehouse))
        .where(F.col("snapshot_date") == F.lit(day))
        .groupBy("region")
        .agg(
            F.count("*").alias("members"),
            F.sum((chat & ~eng).cast("int")).alias("chat_only"),
            F.sum((eng & ~chat).cast("int")).alias("engagement_only"),
            F.sum((chat & eng).cast("int")).alias("both"),
        )
    )
    rows = catalog.join(members, on="region", how="left").orderBy("region").collect()
    return [{k: (v if v is not None else 0) for k, v in r.asDict().items()} for r in rows]


def _print_day(spark, cfg, day):
    """What a date's run left in the tables: ingest reconciliation, then segments per region."""
    from pyspark.sql import functions as F

    from jobs.tables import INGEST_RECONCILIATION, SEGMENT_CATALOG

    on_day = lambda col: F.col(col) == F.lit(day)  # noqa: E731
    recon = (
        spark.read.format("delta")
        .load(INGEST_RECONCILIATION.path(cfg.warehouse))
        .where(on_day("ingest_date"))
        .orderBy("dataset")
        .collect()
    )
    if not recon:
        raise AudienceError(f"no run found for {day} in {cfg.warehouse}")
    print(f"\n{day} (run {recon[0].run_id}): landing rows = accepted + quarantined + duplicates + erased")
    print(
        render_table(
            [r.asDict() for r in recon], ["dataset", "landing_rows", "accepted", "quarantined", "duplicates", "erased"]
        )
    )
    print()
    print(
        render_table(
            _segment_summary(spark, cfg, day),
            ["region", "published", "suppressed", "members", "chat_only", "engagement_only", "both"],
        )
    )
    top = (
        spark.read.format("delta")
        .load(SEGMENT_CATALOG.path(cfg.warehouse))
        .where(on_day("snapshot_date") & (F.col("status") == "published"))
        .orderBy(F.col("member_count").desc())
        .limit(8)
        .collect()
    )
    if top:
        print("\nlargest published segments:")
        print(
            render_table(
                [
                    {
                        "region": r.region,
                        "segment": r.segment_id,
                        "iab": r.iab_audience_id,
                        "members": r.member_count,
                        "sources": ",".join(r.sources),
                    }
                    for r in top
                ]
            )
        )


def cmd_run(args, progress):
    from jobs.pipeline import run_date

    cfg = _config(args)
    spark = _spark(cfg, f"audience-run-{args.date}")
    run_date(spark, cfg, args.date, progress)
    _print_day(spark, cfg, args.date)
    _print_docs(cfg)


def _print_docs(cfg):
    from jobs.quality.gates import docs_index

    print(f"\nvalidation results: quality.validation_results; Data Docs: {docs_index(cfg)}")


def cmd_validate(args, progress):
    """Re-run the suites on the stored tables of a date and print the results."""
    from jobs.context import make_run_id
    from jobs.io import delta_exists
    from jobs.quality import gates as quality
    from jobs.registry import VALIDATED

    cfg = _config(args)
    by_name = {x.qualified: x for x in VALIDATED}
    if args.table and args.table not in by_name:
        raise AudienceError(f"no suite for table {args.table!r} (have: {', '.join(by_name)})")
    tables = [by_name[args.table]] if args.table else VALIDATED
    spark = _spark(cfg, f"audience-validate-{args.date}")
    missing = [x.qualified for x in tables if not delta_exists(spark, x.path(cfg.warehouse))]
    if missing:
        raise AudienceError(f"tables not found under {cfg.warehouse}: {', '.join(missing)}")
    with progress.stage("validate") as step:
        results = quality.validate(
            spark, cfg, args.date, f"validate-{make_run_id(args.date)}", tables, progress=progress
        )
        step.rows = len(results)
    print(
        render_table(
            [
                {
                    "table": r.table,
                    "expectation": r.expectation,
                    "column": r.column or "",
                    "severity": r.severity,
                    "ok": "yes" if r.success else "NO",
                    "observed": r.observed,
                }
                for r in results
            ]
        )
    )
    failed = [r for r in results if not r.success]
    critical = [r for r in failed if r.severity == "critical"]
    print(
        f"\n{len(results)} expectations: {len(results) - len(failed)} passed, {len(critical)} critical failures, "
        f"{len(failed) - len(critical)} warnings"
    )
    _print_docs(cfg)
    if critical:
        raise AudienceError(f"{len(critical)} critical expectations failed, first: {critical[0].describe()}")


def _dates(start: dt.date, end: dt.date):
    if end < start:
        raise AudienceError(f"--end {end} is before --start {start}")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def cmd_backfill(args, progress):
    from jobs.pipeline import run_date

    cfg = _config(args)
    dates = _dates(args.start, args.end)
    spark = _spark(cfg, f"audience-backfill-{args.start}-{args.end}")
    for n, day in enumerate(dates, 1):
        progress.note(f"backfill {n}/{len(dates)}: {day}")
        results = run_date(spark, cfg, day, progress)
        published = sum(1 for r in results["segments"] if r["status"] == "published")
        print(f"{day}  run {results['run_id']}  published segments {published}")


def cmd_stage(args, progress):
    """One stage for one date: what an Airflow task submits (spark-submit jobs/entrypoint.py ...)."""
    import json

    from jobs.context import RunContext
    from jobs.pipeline import run_stage

    cfg = _config(args)
    spark = _spark(cfg, f"audience-{args.stage}-{args.date}")
    ctx = RunContext.start(spark, cfg, args.date, progress, args.run_id, regions=args.region)
    result = run_stage(ctx, args.stage)
    # long lists (publish's catalog rows) as their length: the task log keeps a line, not a table
    print(json.dumps({k: len(v) if isinstance(v, list) and len(v) > 20 else v for k, v in result.items()}, default=str))


def cmd_report(args, progress):
    cfg = _config(args)
    _print_day(_spark(cfg, "audience-report"), cfg, args.date)
    _print_docs(cfg)


def cmd_maintain(args, progress):
    from jobs.ops.maintenance import run_maintenance

    cfg = _config(args)
    spark = _spark(cfg, "audience-maintain")
    print(render_table(run_maintenance(spark, cfg, args.date, progress)))


def cmd_erasure_audit(args, progress):
    """Exit non-zero with a table of what erasure requests past their deadline left behind."""
    from jobs.privacy.audit import audit

    cfg = _config(args)
    spark = _spark(cfg, "audience-erasure-audit")
    with progress.stage("erasure audit") as step:
        due, violations = audit(spark, cfg, args.date, progress)
        step.rows = due
    if violations:
        print(render_table(violations, ["table", "where", "column", "scope", "rows", "problem"]))
        raise AudienceError(
            f"{len(violations)} erasure violations for {due} requests past their deadline "
            f"(erasure_physical_days={cfg.retention.erasure_physical_days}) on {args.date}"
        )
    print(
        f"erasure audit {args.date}: {due} requests past their deadline, nothing of them stored "
        f"(current versions, files on disk, change data)"
    )


def cmd_demo(args, progress):
    from jobs.pipeline import run_date
    from jobs.sample.generate import GenerateOptions, generate

    cfg = _config(args)
    opts = GenerateOptions(start=args.start, days=args.days, messages_per_day=args.messages, seed=args.seed)
    generate(cfg.landing, opts, [t.topic_id for t in cfg.targetable_topics], progress)
    spark = _spark(cfg, "audience-demo")
    for day in _dates(args.start, args.start + dt.timedelta(days=args.days - 1)):
        run_date(spark, cfg, day, progress)
    _print_day(spark, cfg, day)
    print(
        f"\nTables under {Path(cfg.warehouse).absolute()}; e.g. audience sql "
        f"\"SELECT * FROM gold.segment_catalog WHERE status = 'published'\""
    )


def _read_jsonl(stream, source: str, required=("id", "text")) -> list[dict]:
    import json

    records = []
    for n, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if any(rec.get(k) is None for k in required if k != "text") or not isinstance(
                rec.get("text", ""), (str, type(None))
            ):
                raise ValueError
        except (ValueError, AttributeError):
            names = " and ".join(f'"{k}"' for k in required)
            raise AudienceError(f"{source} line {n}: expected a JSON object with {names}") from None
        records.append(rec)
    return records


def cmd_tag(args, progress):
    """JSON lines {"id", "text", "locale"} on stdin -> {"id", "topics", "sensitive"} per line;
    with --evaluate PATH (a labelled file or folder), per-label precision and recall, sensitive
    recall and false-positive rate, and the sensitive confusion table. The nightly job's path:
    the vocabulary or the learned model of conf/taxonomy.yaml's `model`."""
    import json

    from jobs.silver import tagger_model, tagger_train
    from jobs.silver.tagger_eval import confusion_rows

    cfg = _config(args)
    if args.evaluate:
        records = tagger_train.read_labelled(cfg, Path(args.evaluate), None if args.split == "all" else args.split)
        if not records:
            raise AudienceError(f"{args.evaluate}: no records in the {args.split} split")
    else:
        if args.split != "all":
            raise AudienceError("--split applies to --evaluate only")
        records = _read_jsonl(sys.stdin, "stdin")
    spark = _spark(cfg, "audience-tag")
    model = tagger_model.load(cfg.tagger_model)
    if not args.evaluate:
        tagged = {r.id: r for r in tagger_train.tag_records(spark, cfg, model, records).collect()}
        for rec in records:
            r = tagged[str(rec["id"])]
            print(json.dumps({"id": rec["id"], "topics": list(r.topics), "sensitive": list(r.sensitive)}))
        return
    result = tagger_train.evaluate(spark, cfg, model, records)
    print(render_table(result["rows"]))
    print("\nSensitive categories, messages by expected (rows) and predicted (columns) category:")
    print(render_table(confusion_rows(result["confusion"])))
    print(
        f"\n{result['messages']} messages ({args.split} split), tagger {model.version}: "
        f"topic precision {result['topic_precision']:.3f}, recall {result['topic_recall']:.3f}, "
        f"micro-F1 {result['topic_micro_f1']:.3f}; sensitive message recall "
        f"{result['sensitive_message_recall']:.3f} ({result['sensitive_messages']} messages), "
        f"false-positive rate {result['sensitive_false_positive_rate']:.3f}"
    )


def cmd_train_tagger(args, progress):
    """Train the learned detector on the corpus, pick thresholds on dev, report dev and test."""
    from jobs.silver import tagger_train

    cfg = _config(args)
    spark = _spark(cfg, "audience-train-tagger")
    with progress.stage("train tagger") as step:
        manifest = tagger_train.train(spark, cfg, Path(args.corpus), Path(args.out), progress=progress.note)
        step.detail = manifest["version"]
    rows = [{"split": name, **manifest[f"{name}_scores"]} for name in ("dev", "test")]
    print(render_table(rows))
    folder = Path(args.out) / manifest["version"]
    print(f"\nmodel written to {folder}; to use it, set `model:` in conf/taxonomy.yaml to that folder")


def cmd_redact(args, progress):
    """--evaluate FILE: per-kind recall and false positives of PII redaction on a labelled corpus;
    otherwise JSON lines {"text", "country"} on stdin -> the same with the redacted text."""
    import json

    from jobs.privacy.pii_eval import redact_records, score

    cfg = _config(args)
    if args.evaluate:
        try:
            with open(args.evaluate, encoding="utf-8") as fh:
                records = _read_jsonl(fh, args.evaluate, ("text", "kind", "pii"))
        except OSError as exc:
            raise AudienceError(f"cannot read {args.evaluate}: {exc.strerror}") from None
    else:
        records = _read_jsonl(sys.stdin, "stdin", ("text",))
    records = [{**r, "text": r.get("text") or ""} for r in records]
    redacted = redact_records(_spark(cfg, "audience-redact"), records)
    if not args.evaluate:
        for record, out in zip(records, redacted):
            print(json.dumps({**record, "text": out}, ensure_ascii=False))
        return
    result = score(records, redacted)
    print(render_table(result["rows"], ["kind", "cases", "recall", "false_positives"]))
    for kind, missed in result["misses"].items():
        for line in missed:
            print(f"  {'false positive' if kind == 'none' else 'missed ' + kind}: {line}")


# Statements that only read, besides queries (Spark's and Delta's plan node names).
READ_COMMANDS = {
    "ShowTables",
    "ShowTablesExtended",
    "ShowColumns",
    "ShowNamespaces",
    "ShowViews",
    "ShowFunctions",
    "ShowPartitions",
    "ShowTableProperties",
    "ShowCreateTable",
    "DescribeRelation",
    "DescribeColumn",
    "DescribeNamespace",
    "DescribeFunction",
    "ExplainCommand",
    "DescribeDeltaHistory",
    "DescribeDeltaDetailCommand",
    "SetCatalogAndNamespace",
}


WRITE_NODE = re.compile(
    r"Insert|Restore|Merge|Update|Delete|Write|Overwrite|Replace|Create|Drop|Alter|Truncate"
    r"|Vacuum|Optimize|Reorg|Convert|Clone|Cache|Refresh|Load|Set|Reset|Add|Use"
)


def read_only_plan(spark, query: str) -> None:
    """Refuse any statement that could change a table: `audience sql` is read-only."""
    jvm = spark.sparkContext._jvm
    try:
        plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(query)
    except Exception as exc:  # ParseException: its first line is what a user needs
        raise AudienceError(f"query failed: {str(exc).splitlines()[0]}") from None
    command = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.plans.logical.Command")
    nodes = [plan]
    while nodes:  # the whole parsed tree: a write can hide under a WITH
        node = nodes.pop()
        name = node.getClass().getSimpleName()
        if name not in READ_COMMANDS and (command.isInstance(node) or WRITE_NODE.search(name)):
            raise AudienceError(f"audience sql is read-only: {name} refused (use SELECT, SHOW, DESCRIBE, EXPLAIN)")
        children = node.children()
        nodes += [children.apply(i) for i in range(children.size())]


def cmd_sql(args, progress):
    from jobs.session import register_tables

    cfg = _config(args)
    spark = _spark(cfg, "audience-sql")
    read_only_plan(spark, args.query)
    register_tables(spark, cfg)
    try:
        frame = spark.sql(args.query)
    except Exception as exc:  # AnalysisException, ParseException: the message is what a user needs
        raise AudienceError(f"query failed: {str(exc).splitlines()[0]}") from None
    rows = [r.asDict() for r in frame.limit(args.limit).collect()]
    print(render_table(rows, frame.columns) if frame.columns else "ok")


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
        help="conf profile: local, test, airflow, cluster (default from conf or $AUDIENCE_PROFILE)",
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
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--bad-rate", type=float, default=0.01)
    p.add_argument("--duplicate-rate", type=float, default=0.01)
    p.add_argument("--late-rate", type=float, default=0.05)
    p.set_defaults(func=cmd_generate)

    p = add("run", help="run the nightly flow for one logical date")
    p.add_argument("--date", type=_date, required=True)
    p.set_defaults(func=cmd_run)

    p = add("backfill", help="run the nightly flow for every date of a range, in order")
    p.add_argument("--start", type=_date, required=True)
    p.add_argument("--end", type=_date, required=True)
    p.set_defaults(func=cmd_backfill)

    p = add("stage", help="run one stage for one date (what each Airflow task does)")
    p.add_argument("stage", choices=NAMES)
    p.add_argument("--date", type=_date, required=True)
    p.add_argument("--region", action="append", help="segments: only this region (repeatable)")
    p.add_argument("--run-id", help="run id recorded in the tables (Airflow passes its own)")
    p.set_defaults(func=cmd_stage)

    p = add("validate", help="re-run the quality suites on a date's stored tables")
    p.add_argument("--date", type=_date, required=True)
    p.add_argument("--table", help="only this table's suite, e.g. gold.audience_segments")
    p.set_defaults(func=cmd_validate)

    p = add("report", help="print a date's reconciliation and per-region segments")
    p.add_argument("--date", type=_date, required=True)
    p.set_defaults(func=cmd_report)

    p = add("maintain", help="retention, OPTIMIZE and VACUUM of every table")
    p.add_argument("--date", type=_date, default=dt.date.today(), help="the day retention is counted from")
    p.set_defaults(func=cmd_maintain)

    p = add("erasure-audit", help="find data of erasure requests past their deadline, on disk too")
    p.add_argument("--date", type=_date, default=dt.date.today(), help="the day deadlines are counted to")
    p.set_defaults(func=cmd_erasure_audit)

    p = add("redact", help="redact PII from JSON lines on stdin, or evaluate against a labelled corpus")
    p.add_argument("--evaluate", metavar="FILE", help="labelled JSON lines: per-kind recall and false positives")
    p.set_defaults(func=cmd_redact)

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
    p.set_defaults(func=cmd_tag)

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
    p.set_defaults(func=cmd_train_tagger)

    p = add("demo", help="generate sample days and run them (the main job on the embedded default)")
    p.add_argument("--start", type=_date, default=dt.date(2025, 12, 16))
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo)

    p = add("sql", help="run SQL over the registered tables (<layer>.<table>)")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_sql)
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


if __name__ == "__main__":
    sys.exit(main())
