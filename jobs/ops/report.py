"""`audience report --html`: one self-contained HTML file with charts of a range of dates, read from
the tables (segment catalog, audiences, quarantine, quality results, stage durations).

Spark reduces every table to a few rows per date first: what reaches Python grows with the
dates, regions and segments in range, never with members or messages. The charts are Plotly's;
plotly.js is inlined once, so the file opens without a network.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import tables as t
from jobs.config import Config
from jobs.gold.segments import MEMBER_SOURCES, current_members, member_source
from jobs.io import delta_exists

TOP_SEGMENTS = 15
OUTCOMES = {"passed": "#2ca02c", "warning": "#ff7f0e", "failed": "#d62728"}


@dataclass(frozen=True)
class Chart:
    key: str  # the element id of its <figure>
    title: str
    note: str  # what it shows, in a sentence
    frame: pd.DataFrame


def _read(spark, cfg: Config, table: t.Table, column: str, first: dt.date, last: dt.date) -> DataFrame | None:
    if not delta_exists(table.path(cfg.warehouse)):
        return None
    return spark.read.format("delta").load(table.path(cfg.warehouse)).where(F.col(column).between(first, last))


def _latest_run(frame: DataFrame, date_col: str, time_col: str) -> DataFrame:
    """Rows of each date's latest run only (a date re-run keeps the earlier runs' rows in logs)."""
    last = frame.groupBy(date_col, "run_id").agg(F.max(time_col).alias("_at"))
    pick = last.groupBy(date_col).agg(F.max_by("run_id", "_at").alias("run_id"))
    return frame.join(F.broadcast(pick), [date_col, "run_id"], "left_semi")


def _pandas(frame: DataFrame | None, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns) if frame is None else frame.toPandas()


def gather(spark, cfg: Config, first: dt.date, last: dt.date) -> list[Chart]:
    """Each chart's small table, in the report's order."""
    catalog = _read(spark, cfg, t.SEGMENT_CATALOG, "snapshot_date", first, last)
    segments = None
    top = None
    if catalog is not None:
        segments = catalog.groupBy("snapshot_date", "region", "status").agg(F.count("*").alias("segments"))
        newest = catalog.agg(F.max("snapshot_date")).first()[0]
        top = (
            catalog.where((F.col("snapshot_date") == F.lit(newest)) & (F.col("status") == t.PUBLISHED))
            .orderBy(F.col("member_count").desc(), "region", "segment_id")
            .limit(TOP_SEGMENTS)
            .select(F.concat_ws(" · ", "region", "segment_name").alias("segment"), "member_count", "snapshot_date")
        )

    members = _read(spark, cfg, t.AUDIENCE_SEGMENTS, "snapshot_date", first, last)
    by_source = None
    if members is not None and catalog is not None:
        by_source = (
            current_members(members, catalog)
            .groupBy("snapshot_date", member_source().alias("source"))
            .agg(F.count("*").alias("members"))
        )

    quarantine = _read(spark, cfg, t.QUARANTINE, "ingest_date", first, last)
    reasons = None
    if quarantine is not None:
        reasons = quarantine.groupBy("ingest_date", F.concat_ws(": ", "dataset", "reason").alias("reason")).agg(
            F.count("*").alias("rows")
        )

    results = _read(spark, cfg, t.VALIDATION_RESULTS, "logical_date", first, last)
    gates = None
    if results is not None:
        outcome = F.when(F.col("success"), "passed").when(F.col("severity") == "warning", "warning").otherwise("failed")
        gates = (
            _latest_run(results, "logical_date", "validated_at")
            .groupBy("logical_date", outcome.alias("outcome"))
            .agg(F.count("*").alias("expectations"))
        )

    runs = _read(spark, cfg, t.STAGE_RUNS, "logical_date", first, last)
    durations = None
    if runs is not None:
        durations = (  # a retried stage's last attempt
            _latest_run(runs, "logical_date", "started_at")
            .groupBy("logical_date", "stage")
            .agg(F.max_by("seconds", "started_at").alias("seconds"), F.max("started_at").alias("started_at"))
        )

    span = f"{first} to {last}"
    return [
        Chart(
            "segments",
            "Segments per region",
            f"Published and suppressed segments of each region, {span}.",
            _pandas(segments, ["snapshot_date", "region", "status", "segments"]),
        ),
        Chart(
            "sources",
            "Members by source",
            "Segment members whose score came from chat only, engagement only, or both.",
            _pandas(by_source, ["snapshot_date", "source", "members"]),
        ),
        Chart(
            "top",
            "Largest published segments",
            f"The {TOP_SEGMENTS} largest published segments of the last date in range.",
            _pandas(top, ["segment", "member_count", "snapshot_date"]),
        ),
        Chart(
            "quarantine",
            "Quarantine reasons",
            "Landing rows set aside at ingest, by dataset and reason.",
            _pandas(reasons, ["ingest_date", "reason", "rows"]),
        ),
        Chart(
            "gates",
            "Quality gates",
            "Expectations of each date's latest run: passed, failed as a warning, failed as critical.",
            _pandas(gates, ["logical_date", "outcome", "expectations"]),
        ),
        Chart(
            "durations",
            "Run durations per stage",
            "Wall seconds of each stage in each date's latest run.",
            _pandas(durations, ["logical_date", "stage", "seconds", "started_at"]),
        ),
    ]


def _figure(chart: Chart):
    import plotly.express as px

    f = chart.frame
    if chart.key == "segments":
        fig = px.bar(
            f.sort_values(["snapshot_date", "region"]),
            x="snapshot_date",
            y="segments",
            color="region",
            facet_row="status",
            barmode="group",
            category_orders={
                "status": [x for x in (t.PUBLISHED, t.SUPPRESSED_MIN, t.SUPPRESSED_POLICY) if x in set(f.status)],
                "region": sorted(set(f.region)),
            },
        )
    elif chart.key == "sources":
        fig = px.bar(
            f,
            x="snapshot_date",
            y="members",
            color="source",
            category_orders={"source": list(MEMBER_SOURCES)},
        )
    elif chart.key == "top":
        fig = px.bar(f.sort_values("member_count"), x="member_count", y="segment", orientation="h")
    elif chart.key == "quarantine":
        fig = px.bar(f.sort_values("reason"), x="ingest_date", y="rows", color="reason")
    elif chart.key == "gates":
        fig = px.bar(
            f,
            x="logical_date",
            y="expectations",
            color="outcome",
            color_discrete_map=OUTCOMES,
            category_orders={"outcome": list(OUTCOMES)},
        )
    else:
        fig = px.bar(f.sort_values("started_at"), x="logical_date", y="seconds", color="stage")
    if chart.key != "top":  # dates as labels (no hours between nightly bars), in date order
        fig.update_xaxes(type="category", categoryorder="category ascending")
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))  # facet labels: the value only
    fig.update_layout(margin={"t": 30}, legend_title_text="")
    return fig


def render(charts: list[Chart], first: dt.date, last: dt.date, warehouse: str) -> str:
    """The whole page: a heading, then each chart (or a line saying its table has no rows in range)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    sections = []
    for chart in charts:
        if chart.frame.empty:
            body = f'<p class="empty">No rows from {first} to {last}.</p>'
        else:
            body = pio.to_html(
                _figure(chart),
                full_html=False,
                include_plotlyjs=False,
                div_id=f"chart-{chart.key}",
                config={"displaylogo": False, "responsive": True},
            )
        sections.append(
            f'<figure id="{chart.key}"><figcaption><h2>{html.escape(chart.title)}</h2>'
            f"<p>{html.escape(chart.note)}</p></figcaption>{body}</figure>"
        )
    made = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Audience report {first} to {last}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
        "figure{margin:0 0 2.5em}figcaption p{color:#555;margin:.2em 0}.empty{font-style:italic}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<h1>Audience report, {first} to {last}</h1>"
        f"<p>Warehouse {html.escape(str(warehouse))}; written {made}.</p>" + "".join(sections) + "</body></html>\n"
    )


def write_report(spark, cfg: Config, first: dt.date, last: dt.date, path) -> list[Chart]:
    charts = gather(spark, cfg, first, last)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(render(charts, first, last, cfg.warehouse), encoding="utf-8")
    return charts
