"""Commands of the nightly flow: generate, run, backfill, stage, validate, report, maintain,
erasure-audit, demo."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from jobs.cli.common import config_of, date_range, render_table, session
from jobs.errors import AudienceError
from jobs.tables import PUBLISHED, under


def cmd_generate(args, progress):
    from jobs.sample.generate import GenerateOptions, generate

    cfg = config_of(args)
    opts = GenerateOptions(
        start=args.date,
        days=args.days,
        messages_per_day=args.messages,
        users=args.users,
        events_per_day=args.events,
        topic_skew=args.topic_skew,
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

    from jobs.gold.segments import MEMBER_SOURCES, current_members, member_source
    from jobs.tables import AUDIENCE_SEGMENTS, SEGMENT_CATALOG

    day_catalog = (
        spark.read.format("delta").load(SEGMENT_CATALOG.path(cfg.warehouse)).where(F.col("snapshot_date") == F.lit(day))
    )
    catalog = day_catalog.groupBy("region").agg(
        F.sum((F.col("status") == PUBLISHED).cast("int")).alias("published"),
        F.sum((F.col("status") != PUBLISHED).cast("int")).alias("suppressed"),
    )
    source = member_source()
    day_members = (
        spark.read.format("delta")
        .load(AUDIENCE_SEGMENTS.path(cfg.warehouse))
        .where(F.col("snapshot_date") == F.lit(day))
    )
    members = (
        current_members(day_members, day_catalog)
        .groupBy("region")
        .agg(
            F.count("*").alias("members"),
            *[
                F.sum((source == label).cast("int")).alias(column)
                for label, column in zip(MEMBER_SOURCES, ("chat_only", "engagement_only", "both"), strict=True)
            ],
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
        .where(on_day("snapshot_date") & (F.col("status") == PUBLISHED))
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

    cfg = config_of(args)
    spark = session(cfg, f"audience-run-{args.date}")
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

    cfg = config_of(args)
    by_name = {x.qualified: x for x in VALIDATED}
    if args.table and args.table not in by_name:
        raise AudienceError(f"no suite for table {args.table!r} (have: {', '.join(by_name)})")
    tables = [by_name[args.table]] if args.table else VALIDATED
    spark = session(cfg, f"audience-validate-{args.date}")
    missing = [x.qualified for x in tables if not delta_exists(x.path(cfg.warehouse))]
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


def cmd_backfill(args, progress):
    from jobs.pipeline import run_date

    cfg = config_of(args)
    dates = date_range(args.start, args.end)
    spark = session(cfg, f"audience-backfill-{args.start}-{args.end}")
    for n, day in enumerate(dates, 1):
        progress.note(f"backfill {n}/{len(dates)}: {day}")
        results = run_date(spark, cfg, day, progress)
        published = sum(1 for r in results["segments"] if r["status"] == PUBLISHED)
        print(f"{day}  run {results['run_id']}  published segments {published}")


def cmd_stage(args, progress):
    """One stage for one date: what an Airflow task submits (spark-submit jobs/entrypoint.py ...)."""
    import json

    from jobs.context import RunContext
    from jobs.pipeline import run_stage
    from jobs.quality.gates import import_gx_in_background
    from jobs.registry import BY_NAME

    cfg = config_of(args)
    if BY_NAME[args.stage].gate:
        import_gx_in_background()
    spark = session(cfg, f"audience-{args.stage}-{args.date}", args.engine)
    try:
        ctx = RunContext.start(spark, cfg, args.date, progress, args.run_id, regions=args.region)
        result = run_stage(ctx, args.stage)
    finally:
        if args.engine:  # the engine's session of this stage ends with it: its views and caches go
            spark.stop()
    # long lists (publish's catalog rows) as their length: the task log keeps a line, not a table
    print(json.dumps({k: len(v) if isinstance(v, list) and len(v) > 20 else v for k, v in result.items()}, default=str))


def cmd_engine(args, progress):
    from jobs import engine

    if args.action == "serve":
        if not args.port:
            raise AudienceError("engine serve needs --port")
        engine.serve(config_of(args), args.port, args.master, args.max_hours)
    elif args.action == "start":
        config_of(args)  # a bad conf fails here, not in the background
        keys = ("conf", "landing", "warehouse", "profile")  # what `serve` gets of this command line
        roots = [a for key in keys if getattr(args, key) for a in (f"--{key}", getattr(args, key))]
        with progress.stage("engine start"):
            url = engine.start(roots, args.port, args.master)
        print(url)
    else:
        if not args.url:
            raise AudienceError("engine stop needs --url (what `audience engine start` printed)")
        print(f"engine {args.url} {'stopped' if engine.stop(args.url) else 'was not running'}")


def cmd_report(args, progress):
    cfg = config_of(args)
    if args.html is None:
        if args.date is None or args.first or args.last:
            raise AudienceError("report: give --date D (printed), or --from D1 --to D2 --html FILE (charts)")
        _print_day(session(cfg, "audience-report", args.engine), cfg, args.date)
        _print_docs(cfg)
        return
    first, last = (args.date, args.date) if args.date else (args.first, args.last)
    if first is None or last is None or (args.date and (args.first or args.last)) or first > last:
        raise AudienceError("report --html: give --from D1 --to D2 with D1 <= D2 (or one --date)")
    from jobs.ops.report import write_report

    with progress.stage("report") as step:
        charts = write_report(session(cfg, "audience-report", args.engine), cfg, first, last, args.html)
        step.rows = sum(len(c.frame) for c in charts)
    empty = ", ".join(c.title for c in charts if c.frame.empty)
    print(f"report {first} to {last}: {Path(args.html).absolute()}" + (f" (no rows: {empty})" if empty else ""))


def cmd_maintain(args, progress):
    from jobs.ops.maintenance import run_maintenance

    cfg = config_of(args)
    spark = session(cfg, "audience-maintain")
    print(render_table(run_maintenance(spark, cfg, args.date, progress)))


def cmd_erasure_audit(args, progress):
    """Exit non-zero with a table of what erasure requests past their deadline left behind."""
    from jobs.privacy.audit import audit

    cfg = config_of(args)
    spark = session(cfg, "audience-erasure-audit")
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

    cfg = config_of(args)
    opts = GenerateOptions(start=args.start, days=args.days, messages_per_day=args.messages, seed=args.seed)
    generate(cfg.landing, opts, [t.topic_id for t in cfg.targetable_topics], progress)
    spark = session(cfg, "audience-demo")
    for day in date_range(args.start, args.start + dt.timedelta(days=args.days - 1)):
        run_date(spark, cfg, day, progress)
    _print_day(spark, cfg, day)
    print(
        f"\nTables under {under(cfg.warehouse)}; e.g. audience sql "
        f"\"SELECT * FROM gold.segment_catalog WHERE status = 'published'\""
    )
