"""Great Expectations gates, run for real (GX 1.x on Spark) on the tables of a generated night.

Every critical expectation gets a planted violation on a good day's frame and must block the gate;
warnings must not. End to end: a planted violation stops `audience run` before publication, the
previous snapshot stays the published one, and the Data Docs show the failure. No user key or text
reaches the results table or the Data Docs.
"""
import datetime as dt
import re
import shutil
import subprocess
import sys

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jobs import quality, tables as t
from jobs.quality import QualityGateError

pytestmark = pytest.mark.slow
D1, D2 = dt.date(2025, 12, 16), dt.date(2025, 12, 17)
RAW_ID = "raw-user-id-4711"  # what a leak of unexpected values would copy


def _critical():
    for table in quality.VALIDATED:
        for exp in quality.load_suite(table)["expectations"]:
            if exp["meta"]["severity"] == "critical":
                on = exp["kwargs"].get("column") or ",".join(exp["kwargs"].get("column_list", []))
                yield pytest.param(table, exp, id=f"{table.qualified}-{exp['type'][7:]}-{on}")


def test_every_validated_table_has_a_suite_whose_expectations_carry_a_severity():
    names = {p.stem for p in quality.SUITES_DIR.glob("*.json")}
    assert names == {x.qualified for x in quality.VALIDATED}
    for table in quality.VALIDATED:
        for exp in quality.load_suite(table)["expectations"]:
            assert exp["meta"]["severity"] in ("critical", "warning")


@pytest.fixture(scope="module")
def good_day(spark, two_nights):
    """The second night's validation frames (all pass), cached, and the suite parameters."""
    cfg = two_nights["cfg"]
    frames = {x: quality.validation_frame(spark, cfg, x, D2).cache() for x in quality.VALIDATED}
    empty = [x.qualified for x, f in frames.items() if f.count() == 0]
    assert not empty, f"the generated night should fill every table: {empty}"
    results = quality.validate(spark, cfg, D2, "good-day", quality.VALIDATED, frames=frames)
    return {"cfg": cfg, "frames": frames, "params": quality.parameters(spark, cfg, D2), "results": results}


def test_a_good_day_passes_every_critical_expectation(good_day):
    failed = [r.describe() for r in good_day["results"] if not r.success and r.severity == "critical"]
    assert failed == []


def _one_row(frame, column, value):
    """`frame` with `column` set to `value` on exactly one row."""
    marked = frame.withColumn("_rid", F.monotonically_increasing_id())
    first = marked.agg(F.min("_rid")).first()[0]
    bad = F.lit(value).cast(frame.schema[column].dataType)
    return marked.withColumn(column, F.when(F.col("_rid") == first, bad).otherwise(F.col(column))).drop("_rid")


def plant(frame, exp, params):
    """A violation of `exp` derived from its rule, not from the data."""
    kind, kw = exp["type"], exp["kwargs"]
    resolve = lambda v: params[v["$PARAMETER"]] if isinstance(v, dict) else v  # noqa: E731
    if kind in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique",
                "expect_table_row_count_to_be_between"):
        return frame.unionByName(frame.limit(1))  # a duplicate row; one row more than the exact count
    if kind == "expect_table_columns_to_match_set":
        return frame.withColumn("text", F.lit("my chat message"))
    column = kw["column"]
    if kind == "expect_column_values_to_not_be_null":
        return _one_row(frame, column, None)
    if kind == "expect_column_values_to_match_regex":
        return _one_row(frame, column, RAW_ID)
    if kind == "expect_column_values_to_not_be_in_set":
        return _one_row(frame, column, resolve(kw["value_set"])[0])
    if kind == "expect_column_values_to_be_in_set":
        allowed = resolve(kw["value_set"])
        return _one_row(frame, column, False if allowed == [True] else "not-in-the-contract")
    if kind == "expect_column_values_to_be_between":
        if "max_value" in kw:
            high = resolve(kw["max_value"])
            value = dt.datetime.fromisoformat(high) + dt.timedelta(days=1) if isinstance(high, str) else high + 1
        else:
            value = resolve(kw["min_value"]) - 1
        return _one_row(frame, column, value)
    raise AssertionError(f"no violation recipe for {kind}")


@pytest.mark.parametrize("table,exp", list(_critical()))
def test_planted_violation_of_each_critical_expectation_blocks_the_gate(spark, good_day, table, exp):
    cfg = good_day["cfg"]
    bad = plant(good_day["frames"][table], exp, good_day["params"])
    results = quality.validate(spark, cfg, D2, f"plant-{table.qualified}", [table], frames={table: bad},
                               select=lambda x: x == exp, data_docs=False)
    assert [(r.expectation, r.success, r.severity) for r in results] == [(exp["type"], False, "critical")]
    with pytest.raises(QualityGateError, match=exp["type"]):
        quality.check(cfg, D2, "publish", results)


def test_warnings_are_recorded_but_do_not_block(spark, good_day):
    cfg = good_day["cfg"]
    chat = good_day["frames"][t.CHAT_MESSAGES]
    assert good_day["params"]["chat_messages_min_rows"] > 10, "the trailing day gives a drift band"
    results = quality.validate(spark, cfg, D2, "drift-check", [t.CHAT_MESSAGES], frames={t.CHAT_MESSAGES: chat.limit(10)},
                               data_docs=False)
    failed = [r for r in results if not r.success]
    assert [(r.expectation, r.severity) for r in failed] == [("expect_table_row_count_to_be_between", "warning")]
    assert failed[0].observed == "10"
    quality.check(cfg, D2, "ingest", results)  # does not raise
    recorded = spark.read.format("delta").load(t.VALIDATION_RESULTS.path(cfg.warehouse)).where(
        (F.col("run_id") == "drift-check") & ~F.col("success")).collect()
    assert [(r.table_name, r.severity, r.observed_value) for r in recorded] == [
        ("bronze.chat_messages", "warning", "10")]


def test_publish_gate_on_staged_segments_keeps_the_published_snapshot(spark, two_nights, small_audience_conf, tmp_path):
    """The night is re-staged and a member row for a segment the catalog suppresses is slipped into
    staging: publish refuses, and the published catalog and members stay as they were."""
    from jobs.config import load_config
    from jobs.pipeline import run_stage
    from jobs.progress import Progress
    cfg = load_config(small_audience_conf, profile="test", landing=two_nights["cfg"].landing,
                      warehouse=tmp_path / "warehouse")
    shutil.copytree(two_nights["cfg"].warehouse, cfg.warehouse)
    run_stage(spark, cfg, "segments", D2, Progress(quiet=True), "restaged-run")
    staged = spark.read.format("delta").load(t.SEGMENTS_STAGING.path(cfg.warehouse)).where(
        F.col("snapshot_date") == F.lit(D2))
    suppressed = spark.read.format("delta").load(t.CATALOG_STAGING.path(cfg.warehouse)).where(
        (F.col("snapshot_date") == F.lit(D2)) & (F.col("status") != "published")).first()
    intruder = staged.limit(1).withColumn("segment_id", F.lit(suppressed.segment_id)).withColumn(
        "region", F.lit(suppressed.region))
    assert intruder.count() == 1
    intruder.write.format("delta").mode("append").save(t.SEGMENTS_STAGING.path(cfg.warehouse))
    catalog = DeltaTable.forPath(spark, t.SEGMENT_CATALOG.path(cfg.warehouse))
    members = DeltaTable.forPath(spark, t.AUDIENCE_SEGMENTS.path(cfg.warehouse))
    before = (catalog.history(1).first().version, members.history(1).first().version)
    with pytest.raises(QualityGateError, match="check_catalog_status"):
        run_stage(spark, cfg, "publish", D2, Progress(quiet=True), "restaged-run")
    assert (catalog.history(1).first().version, members.history(1).first().version) == before


def test_planted_violation_stops_audience_run_before_publication(spark, two_nights, tmp_path):
    """Acceptance: an otherwise good day whose history holds a sensitive-topic signal (as an older
    release might have written) makes `audience run` exit non-zero naming the expectation; the
    catalog's latest snapshot stays the previous date; the Data Docs show the failure."""
    cfg = two_nights["cfg"]
    warehouse = tmp_path / "warehouse"
    shutil.copytree(two_nights["after_d1"], warehouse)
    signals = t.DAILY_SIGNALS.path(warehouse)
    sensitive = sorted(x.topic_id for x in cfg.topics.values() if x.sensitive)[0]
    (spark.read.format("delta").load(signals).where((F.col("signal_date") == F.lit(D1)) & (F.col("source") == "engagement"))
     .limit(1).withColumn("topic", F.lit(sensitive)).write.format("delta").mode("append").save(signals))
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "--profile", "test", "--conf", str(cfg.conf_dir),
                           "--landing", str(cfg.landing),
                           "--warehouse", str(warehouse), "run", "--date", str(D2)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()[-1]
    assert "gold.user_interests" in error and "expect_column_values_to_not_be_in_set(topic)" in error, error
    assert "Traceback" not in done.stderr
    catalog = spark.read.format("delta").load(t.SEGMENT_CATALOG.path(warehouse))
    assert catalog.agg(F.max("snapshot_date")).first()[0] == D1
    interests = spark.read.format("delta").load(t.USER_INTERESTS.path(warehouse))
    assert interests.where(F.col("snapshot_date") == F.lit(D2)).count() == 0, "the failed stage was rolled back"
    docs = tmp_path / "data_docs" / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert str(docs / "index.html") in error
    pages = list((docs / "validations" / "gold" / "user_interests").rglob("*.html"))
    assert len(pages) == 1 and "Failed" in pages[0].read_text()
    assert "gold.user_interests" in (docs / "index.html").read_text()


def test_results_and_data_docs_hold_no_user_keys_or_text(spark, good_day):
    """After a planted bad user key (GX would list it as an unexpected value) went through a
    validation with Data Docs: neither the results table nor any Data Docs file holds a user key,
    the planted raw id or message text."""
    cfg = good_day["cfg"]
    chat = good_day["frames"][t.CHAT_MESSAGES]
    leaky = _one_row(chat, "user_key", RAW_ID)
    results = quality.validate(spark, cfg, D2, "leak-check", [t.CHAT_MESSAGES], frames={t.CHAT_MESSAGES: leaky})
    assert any(not r.success for r in results)
    keys = {r.user_key for r in chat.select("user_key").distinct().collect()}
    texts = [r.text for r in chat.where(F.length("text") > 20).select("text").limit(20).collect()] + [RAW_ID]

    def leaks(content: str) -> bool:
        return bool(set(re.findall(r"[0-9a-f]{64}", content)) & keys) or any(x in content for x in texts)
    table = spark.read.format("delta").load(t.VALIDATION_RESULTS.path(cfg.warehouse))
    assert table.count() > 0
    assert [row for row in table.collect() if leaks(" ".join(map(str, row)))] == []
    files = [p for p in cfg.data_docs.rglob("*") if p.is_file() and p.suffix in (".html", ".json")]
    assert any(p.suffix == ".html" for p in files)
    assert [str(p) for p in files if leaks(p.read_text(errors="ignore"))] == []
