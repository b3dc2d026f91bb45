"""Quality gates: Great Expectations suites (expectations/<layer>.<table>.json) run on what a stage
has just written, before the next stage reads it, and on the staged segments before publication.

A failed `critical` expectation stops the run (so yesterday's catalog stays the published one) with
one message naming table, expectation and observed value; `warning` results are recorded and
reported. Every result goes to `quality.validation_results` and to GX Data Docs. Results are
aggregates only (counts, observed values of aggregates): GX runs with a result format that keeps
no unexpected values, so no user key or text is copied out of the tables.

Cross-table rules and privacy invariants that a single-table expectation cannot see are computed as
`check_*` columns of the frame under validation; the suites assert them. `validation_frame` reads the
date's tables and hands them to pure DataFrame functions (`segment_checks`, `reconciliation_checks`,
`interest_checks`) that add the columns, so tests can compute them from planted inputs.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import functions as F

from jobs import REPO_ROOT
from jobs import tables as t
from jobs.bronze.contract import ERASURE_SCOPES, ROLES, SURFACES
from jobs.config import ENGAGEMENT_EVENT_TYPES, Config
from jobs.errors import AudienceError, ConfigError
from jobs.io import delta_exists, replace_partition
from jobs.quality.checks import validation_frame

SUITES_DIR = REPO_ROOT / "expectations"
SEVERITIES = ("critical", "warning")
DATA_SOURCE = "audience"
# Counts and aggregate observations only: no partial or full lists of unexpected values.
RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}


class QualityGateError(AudienceError):
    """A critical expectation failed: the run stops before anything is published."""


@dataclass(frozen=True)
class Result:
    table: str
    expectation: str
    column: str | None
    severity: str
    success: bool
    observed: str

    def describe(self) -> str:
        on = f"({self.column})" if self.column else ""
        return f"{self.table}: {self.expectation}{on} [{self.severity}] observed {self.observed}"


def load_suite(table: t.Table) -> dict:
    """The suite's JSON, checked: every expectation names its severity in meta."""
    path = SUITES_DIR / f"{table.qualified}.json"
    try:
        suite = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(path, "-", f"cannot read suite: {exc}") from None
    if suite.get("name") != table.qualified:
        raise ConfigError(path, "name", f"must be {table.qualified!r}")
    for i, exp in enumerate(suite.get("expectations") or []):
        if (exp.get("meta") or {}).get("severity") not in SEVERITIES:
            raise ConfigError(path, f"expectations[{i}].meta.severity", f"must be one of {SEVERITIES}")
    return suite


def parameters(spark, cfg: Config, d: dt.date, tables=(t.CHAT_MESSAGES, t.ENGAGEMENT_EVENTS)) -> dict:
    """Values the suites refer to as {"$PARAMETER": name}: conf lists, the date's window, and the
    drift bands of those `tables` whose suites use them (bronze chat and engagement)."""
    tolerance = dt.timedelta(hours=cfg.timestamp_tolerance_hours)
    start = dt.datetime.combine(d, dt.time(), tzinfo=dt.timezone.utc)  # aware: GX hands it to Spark
    params = {
        "iso_countries": sorted(cfg.iso_countries),
        "regions": sorted(cfg.regions),
        "roles": list(ROLES),
        "surfaces": list(SURFACES),
        "event_types": list(ENGAGEMENT_EVENT_TYPES),
        "erasure_scopes": list(ERASURE_SCOPES),
        "topics": sorted(cfg.topics),
        "targetable_topics": sorted(x.topic_id for x in cfg.targetable_topics),
        "sensitive_topics": sorted(x for x, topic in cfg.topics.items() if topic.sensitive),
        "window_start": (start - tolerance).isoformat(),
        "window_end": (start + dt.timedelta(days=1) + tolerance).isoformat(),
        "max_birth_year": d.year,
        "max_daily_weight": cfg.daily_cap_per_topic,
        "catalog_rows": len(cfg.regions) * len(cfg.targetable_topics),
        "max_quarantine_share": cfg.quality.max_quarantine_share,
    }
    # Drift: accepted rows of the trailing days (a few rows per day from the reconciliation table).
    band = cfg.quality.row_count_band
    drifting = [table.name for table in tables if table in (t.CHAT_MESSAGES, t.ENGAGEMENT_EVENTS)]
    trailing = {}
    path = t.INGEST_RECONCILIATION.path(cfg.warehouse)
    if drifting and delta_exists(path):
        since = d - dt.timedelta(days=cfg.quality.trailing_days)
        trailing = {
            r.dataset: r.mean
            for r in spark.read.format("delta")
            .load(path)
            .where((F.col("ingest_date") >= F.lit(since)) & (F.col("ingest_date") < F.lit(d)))
            .groupBy("dataset")
            .agg(F.avg("accepted").alias("mean"))
            .collect()
        }
    for dataset in drifting:
        mean = trailing.get(dataset)
        params[f"{dataset}_min_rows"] = int(mean * (1 - band)) if mean else 0
        params[f"{dataset}_max_rows"] = int(mean / (1 - band)) + 1 if mean else 2**62
    return params


def _observed(result: dict, exception: dict | None) -> str:
    if exception and exception.get("raised_exception"):
        return "error: " + str(exception.get("exception_message") or "")[:200]
    if "observed_value" in result:
        value = result["observed_value"]
        return json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value)
    if "unexpected_count" in result:
        return f"{result['unexpected_count'] or 0:,} unexpected of {result.get('element_count') or 0:,} rows"
    return ""


_importing: threading.Thread | None = None


def _import_gx():
    if _importing is not None and _importing is not threading.current_thread():
        _importing.join()  # GX's modules import each other: two threads importing them can deadlock
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # else ~200 info lines
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    return gx, ProgressBarsConfig


def import_gx_in_background() -> None:
    """Import GX in a thread: a process that runs one stage (an Airflow task) overlaps those
    seconds with the JVM's start instead of paying them at its gate (which waits for the thread).
    Not a daemon: a stage that fails early exits after the import, never in the middle of one."""
    global _importing
    _importing = threading.Thread(target=_import_gx, name="import-gx")
    _importing.start()


@functools.lru_cache(maxsize=4)
def _context(data_docs: Path):
    """GX, its file context and the Spark data source: built once per process (importing GX and
    loading the context cost seconds, which a gate would otherwise pay per suite)."""
    gx, ProgressBarsConfig = _import_gx()

    data_docs.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(data_docs))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return gx, context, context.data_sources.add_or_update_spark(name=DATA_SOURCE)


def docs_index(cfg: Config) -> Path:
    return cfg.data_docs / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def validate(
    spark,
    cfg: Config,
    d: dt.date,
    run_id: str,
    tables,
    staged: bool = False,
    progress=None,
    frames: dict | None = None,
    select=None,
    data_docs: bool = True,
) -> list[Result]:
    """Run the suites of `tables` on the date's rows; record and return the results.
    `frames` replaces a table's validation frame and `select` filters expectations (tests plant
    violations that way); `data_docs=False` skips the Data Docs update.

    One GX run per suite, without a checkpoint: the Data Docs of all the call's results are built
    once at the end rather than per suite."""
    gx, context, source = _context(cfg.data_docs)
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    params = parameters(spark, cfg, d, tables)
    run = gx.RunIdentifier(run_name=f"{run_id}", run_time=dt.datetime.now(dt.timezone.utc))
    results: list[Result] = []
    stored = []  # the GX resources whose Data Docs pages this call updates
    for table in tables:
        suite_json = load_suite(table)
        expectations = [x for x in suite_json["expectations"] if select is None or select(x)]
        frame = (frames or {}).get(table)
        frame = (frame if frame is not None else validation_frame(spark, cfg, table, d, staged)).cache()
        asset = next((a for a in source.assets if a.name == table.qualified), None) or source.add_dataframe_asset(
            name=table.qualified
        )
        batch = next(
            (b for b in asset.batch_definitions if b.name == "date"), None
        ) or asset.add_batch_definition_whole_dataframe("date")
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(name=table.qualified, expectations=expectations, meta=suite_json.get("meta") or {})
        )
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=table.qualified, data=batch, suite=suite)
        )
        outcome = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=params,
            result_format=RESULT_FORMAT,
            run_id=run,
        )
        frame.unpersist()
        suite_id = ExpectationSuiteIdentifier(name=table.qualified)
        stored += [
            suite_id,
            ValidationResultIdentifier(suite_id, run, batch_identifier=f"{DATA_SOURCE}-{table.qualified}"),
        ]
        for r in outcome.results:
            kwargs = r.expectation_config.kwargs
            column = kwargs.get("column") or ",".join(kwargs.get("column_list") or []) or None
            results.append(
                Result(
                    table.qualified,
                    r.expectation_config.type,
                    column,
                    r.expectation_config.meta["severity"],
                    bool(r.success),
                    _observed(r.result or {}, r.exception_info),
                )
            )
        if progress:
            failed = sum(not r.success for r in results if r.table == table.qualified)
            progress.note(f"validated {table.qualified}: {len(expectations)} expectations, {failed} failed")
    if data_docs and stored:
        context.build_data_docs(resource_identifiers=stored)
    _record(spark, cfg, d, run_id, results, "staging" if staged else "table")
    return results


def _record(spark, cfg: Config, d: dt.date, run_id: str, results: list[Result], validated_from: str) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    rows = [
        (run_id, d, r.table, validated_from, r.expectation, r.column, r.severity, r.success, r.observed, now)
        for r in results
    ]
    frame = spark.createDataFrame(rows, t.VALIDATION_RESULTS.schema)
    replace_partition(
        frame,
        t.VALIDATION_RESULTS,
        cfg.warehouse,
        {"logical_date": d, "run_id": run_id, "table_name": sorted({r.table for r in results})},
    )


def gate(ctx, stage: str, tables, staged: bool = False) -> list[Result]:
    """Validate a stage's tables (the registry's `gate`); raise QualityGateError if a critical
    expectation failed. staged=True: the staged rows publish is about to make visible."""
    results = validate(ctx.spark, ctx.cfg, ctx.logical_date, ctx.run_id, tables, staged=staged, progress=ctx.progress)
    for r in results:
        if not r.success and r.severity == "warning":
            ctx.progress.note(f"quality warning: {r.describe()}")
    check(ctx.cfg, ctx.logical_date, stage, results)
    return results


def check(cfg: Config, d: dt.date, stage: str, results: list[Result]) -> None:
    """Warnings pass; any failed critical expectation raises, naming the first one."""
    failed = [r for r in results if not r.success and r.severity == "critical"]
    if failed:
        more = f" (and {len(failed) - 1} more critical failures)" if len(failed) > 1 else ""
        raise QualityGateError(
            f"quality gate '{stage}' failed for {d}, nothing published: {failed[0].describe()}"
            f"{more}; Data Docs: {docs_index(cfg)}"
        )
