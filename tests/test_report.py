"""`audience report --html`: one file that opens offline in a real browser (Debian's Chromium,
installed by `make browser`) with every chart drawn from the two nights' tables."""

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from pyspark.sql import functions as F

from jobs import tables as t
from jobs.cli import main
from jobs.registry import STAGES

CHARTS = ("segments", "sources", "top", "quarantine", "gates", "durations")


class _Fetches(HTMLParser):
    """What a page's tags would fetch: scripts, styles, images, frames (links a reader clicks aside)."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        wanted = {"script": "src", "img": "src", "iframe": "src", "link": "href", "object": "data"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


def _fetched(page: str) -> list[str]:
    parser = _Fetches()
    parser.feed(page)
    return parser.urls


def _render_in_chromium(page, profile_dir) -> str:
    """The page's DOM after its scripts ran, with every network request refused."""
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is not installed: run `make browser` (Debian's chromium package)"
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile_dir}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no name resolves
            "--virtual-time-budget=20000",
            "--window-size=1200,900",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _chart(dom: str, key: str) -> str:
    start = dom.index(f'<figure id="{key}"')
    end = dom.find("<figure", start + 1)
    return dom[start : end if end > 0 else len(dom)]


def test_html_report_opens_offline_and_draws_every_chart(spark, two_nights, tmp_path, capsys):
    cfg, d1, d2 = two_nights["cfg"], two_nights["d1"], two_nights["d2"]
    page = tmp_path / "report.html"
    common = ["--conf", str(cfg.conf_dir), "--profile", "test", "--warehouse", str(cfg.warehouse), "-q"]
    assert main(["report", *common, "--from", str(d1), "--to", str(d2), "--html", str(page)]) == 0
    assert str(page) in capsys.readouterr().out

    fetched = _fetched(page.read_text())
    assert fetched == [], f"the page loads {fetched}"

    dom = _render_in_chromium(page, tmp_path / "chromium-profile")
    for key in CHARTS:
        drawn = _chart(dom, key)
        assert "js-plotly-plot" in drawn and 'class="main-svg"' in drawn, f"chart {key} was not drawn"

    # The top-segments chart has a bar for each of the last date's largest published segments.
    published = (
        spark.read.format("delta")
        .load(t.SEGMENT_CATALOG.path(cfg.warehouse))
        .where((F.col("snapshot_date") == F.lit(d2)) & (F.col("status") == t.PUBLISHED))
        .count()
    )
    assert published > 0
    assert len(re.findall(r'<g class="point"', _chart(dom, "top"))) == min(15, published)
    # Every stage of both nights has its duration, each date's stages in the run's order.
    stages = (
        spark.read.format("delta")
        .load(t.STAGE_RUNS.path(cfg.warehouse))
        .where(F.col("run_id") == two_nights["first"]["run_id"])
        .orderBy("started_at")
    )
    assert [r.stage for r in stages.collect()] == [s.name for s in STAGES]
    for stage in STAGES:
        assert f">{stage.name}<" in _chart(dom, "durations"), stage.name  # its legend entry


@pytest.mark.parametrize(
    "args",
    [
        ["--html", "x.html"],
        ["--from", "2025-12-17", "--to", "2025-12-16", "--html", "x.html"],
        ["--from", "2025-12-16"],
        [],
    ],
    ids=["no-dates", "reversed", "range-without-html", "nothing"],
)
def test_report_refuses_dates_that_name_no_range(args, capsys):
    assert main(["report", *args]) == 2
    assert "report" in capsys.readouterr().err


def test_summaries_count_the_members_of_the_publication_the_catalog_names(spark, two_nights, tmp_path):
    """A run that died between appending its members and its catalog commit leaves rows of another
    publication until the date is published again; readers, the report and the run's summary table
    count only the members of the publication each catalog row names."""
    from jobs.cli.nightly import _segment_summary
    from jobs.config import load_config
    from jobs.ops.report import gather

    cfg, d2 = two_nights["cfg"], two_nights["d2"]
    copy = load_config(cfg.conf_dir, "test", cfg.landing, tmp_path / "warehouse")
    shutil.copytree(cfg.warehouse, copy.warehouse)
    members = spark.read.format("delta").load(t.AUDIENCE_SEGMENTS.path(copy.warehouse))
    dead_run = members.where(F.col("snapshot_date") == F.lit(d2)).withColumn("publication_id", F.lit("dead-run/0"))
    dead_run.write.format("delta").mode("append").save(t.AUDIENCE_SEGMENTS.path(copy.warehouse))

    catalog = spark.read.format("delta").load(t.SEGMENT_CATALOG.path(copy.warehouse))
    published = {  # the rule: a published catalog row's member_count is its segment's audience
        r.region: r.n
        for r in catalog.where((F.col("snapshot_date") == F.lit(d2)) & (F.col("status") == t.PUBLISHED))
        .groupBy("region")
        .agg(F.sum("member_count").alias("n"))
        .collect()
    }
    assert sum(published.values()) > 0
    assert {r["region"]: r["members"] for r in _segment_summary(spark, copy, d2) if r["members"]} == published
    sources = next(c.frame for c in gather(spark, copy, d2, d2) if c.key == "sources")
    assert sources["members"].sum() == sum(published.values())
