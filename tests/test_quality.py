"""Great Expectations gates, run for real (GX 1.x on Spark) on the tables of a generated night.

Every critical expectation gets a planted violation and must block the gate; warnings must not.
Expectations on ordinary columns get the bad value planted in a good day's frame. Those on the
computed `check_*` columns get bad rows planted in the inputs the check is computed from (members,
catalog, user state, reconciliation counts, interests), and the validation frame is computed from
them by the product's own check functions: plant the bad input, not the bad result, so that a wrong
check computation fails the test. End to end: a planted violation stops `audience run` before
publication, the previous snapshot stays the published one, and the Data Docs show the failure. No
user key or text reaches the results table or the Data Docs.
"""

import datetime as dt
import re
import shutil

import pytest
from delta.tables import DeltaTable
from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs import tables as t
from jobs.cli import main
from jobs.quality import checks
from jobs.quality import gates as quality
from jobs.quality.gates import QualityGateError
from jobs.registry import STAGES, VALIDATED

pytestmark = pytest.mark.slow
D1, D2 = dt.date(2025, 12, 16), dt.date(2025, 12, 17)
RAW_ID = "raw-user-id-4711"  # what a leak of unexpected values would copy


def _critical(checks: bool):
    """(table, expectation, column) of the critical expectations: those on computed check_* columns
    (checks=True) or the others."""
    for table in VALIDATED:
        for exp in quality.load_suite(table)["expectations"]:
            if exp["meta"]["severity"] == "critical":
                on = exp["kwargs"].get("column") or ",".join(exp["kwargs"].get("column_list", []))
                if on.startswith("check_") == checks:
                    yield table, exp, on


def test_every_validated_table_has_a_suite_whose_expectations_carry_a_severity():
    names = {p.stem for p in quality.SUITES_DIR.glob("*.json")}
    assert names == {x.qualified for x in VALIDATED}
    for table in VALIDATED:
        for exp in quality.load_suite(table)["expectations"]:
            assert exp["meta"]["severity"] in ("critical", "warning")


@pytest.fixture(scope="module")
def good_day(spark, two_nights):
    """The second night's validation frames (all pass), cached, and the suite parameters."""
    cfg = two_nights["cfg"]
    frames = {x: checks.validation_frame(spark, cfg, x, D2).cache() for x in VALIDATED}
    empty = [x.qualified for x, f in frames.items() if f.count() == 0]
    assert not empty, f"the generated night should fill every table: {empty}"
    results = quality.validate(spark, cfg, D2, "good-day", VALIDATED, frames=frames)
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
    if kind in (
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
        "expect_table_row_count_to_be_between",
    ):
        return frame.unionByName(frame.limit(1))  # a duplicate row; one row more than the exact count
    if kind == "expect_table_columns_to_match_set":
        return frame.withColumn("text", F.lit("my chat message"))
    column = kw["column"]
    if column.startswith("check_"):
        raise AssertionError(f"{column} is computed: plant the bad input (CHECK_RECIPES), not the bad result")
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


@pytest.mark.parametrize(
    "table,exp",
    [
        pytest.param(table, exp, id=f"{table.qualified}-{exp['type'][7:]}-{on}")
        for table, exp, on in _critical(checks=False)
    ],
)
def test_planted_violation_of_each_critical_expectation_blocks_the_gate(spark, good_day, table, exp):
    cfg = good_day["cfg"]
    bad = plant(good_day["frames"][table], exp, good_day["params"])
    results = quality.validate(
        spark,
        cfg,
        D2,
        f"plant-{table.qualified}",
        [table],
        frames={table: bad},
        select=lambda x: x == exp,
        data_docs=False,
    )
    assert [(r.expectation, r.success, r.severity) for r in results] == [(exp["type"], False, "critical")]
    with pytest.raises(QualityGateError, match=exp["type"]):
        quality.check(cfg, D2, "publish", results)


# --- critical expectations on check_* columns: bad input rows, checks computed by the product ---
SEGMENT_TABLES = (t.AUDIENCE_SEGMENTS, t.SEGMENT_CATALOG)


@pytest.fixture(scope="module")
def good_inputs(spark, two_nights):
    """The second night's inputs of the check computations, read from the warehouse and cached, as
    published (staged=False) and as staged for publication (staged=True): the frames
    `checks.validation_frame` reads."""
    cfg = two_nights["cfg"]

    def read(table):
        frame = (
            spark.read.format("delta")
            .load(table.path(cfg.warehouse))
            .where(F.col(table.partition_by[0]) == F.lit(D2))
            .cache()
        )
        assert frame.count() > 0, f"the generated night should fill {table.qualified}"
        return frame

    shared = {
        "state": read(t.USER_STATE),
        "reconciliation": read(t.INGEST_RECONCILIATION),
        "interests": read(t.USER_INTERESTS),
        "date": D2,
    }
    inputs = {
        False: {**shared, "members": read(t.AUDIENCE_SEGMENTS), "catalog": read(t.SEGMENT_CATALOG)},
        True: {**shared, "members": read(t.SEGMENTS_STAGING), "catalog": read(t.CATALOG_STAGING)},
    }
    for staged, good in inputs.items():  # what the recipes start from passes every check
        for table in VALIDATED:
            checks = _check_expectations(table)
            if checks and (staged is False or table in SEGMENT_TABLES):
                assert _violations(_checked(table, cfg, good, staged), checks) == {}, (table.qualified, staged)
    return inputs


def _check_expectations(table):
    return [exp for x, exp, _ in _critical(checks=True) if x == table]


def _violations(frame, exps):
    """Rows outside each expectation's value set (null counts as outside), by column; zero counts left out."""
    counts = (
        frame.agg(
            *[
                F.sum(
                    (~F.coalesce(F.col(x["kwargs"]["column"]).isin(x["kwargs"]["value_set"]), F.lit(False))).cast("int")
                ).alias(x["kwargs"]["column"])
                for x in exps
            ]
        )
        .first()
        .asDict()
    )
    return {column: n for column, n in counts.items() if n}


def _checked(table, cfg, inputs, staged):
    """The validation frame of `table` computed from `inputs` by the product's check functions."""
    d = inputs["date"]
    if table == t.INGEST_RECONCILIATION:
        return checks.reconciliation_checks(inputs["reconciliation"])
    if table == t.USER_INTERESTS:
        return checks.interest_checks(inputs["interests"], checks.chat_regions(cfg, d))
    assert table in SEGMENT_TABLES, table
    return checks.segment_checks(
        table, inputs["members"], inputs["catalog"], inputs["state"], checks.min_ages(cfg), d, staged=staged
    )


def _set(frame, where, **values):
    """`frame` with the named columns set to `values` (literals or Columns) on the rows matching `where`."""
    for column, value in values.items():
        value = (value if isinstance(value, Column) else F.lit(value)).cast(frame.schema[column].dataType)
        frame = frame.withColumn(column, F.when(where, value).otherwise(F.col(column)))
    return frame


def _in(row):
    """Rows of the segment (region, segment_id) of `row`."""
    return (F.col("region") == row.region) & (F.col("segment_id") == row.segment_id)


def _published_segment(inputs):
    """The catalog row of a published segment with member rows (the largest, then by name)."""
    row = (
        inputs["catalog"]
        .where((F.col("status") == "published") & (F.col("member_count") > 0))
        .join(inputs["members"].select("region", "segment_id").distinct(), ["region", "segment_id"], "left_semi")
        .orderBy(F.col("member_count").desc(), "region", "segment_id")
        .first()
    )
    assert row is not None, "the good day should publish a segment with members"
    return row


def _a_member(inputs):
    row = inputs["members"].orderBy("region", "segment_id", "user_key").first()
    assert row is not None, "the good day should have member rows"
    return row


def member_too_young(inputs, cfg):
    """check_min_age_met: a member born in (date's year - region's min_age) according to user state:
    with only a birth year, their youngest possible age is min_age - 1."""
    member = _a_member(inputs)
    birth_year = inputs["date"].year - cfg.regions[member.region].min_age
    return {**inputs, "state": _set(inputs["state"], F.col("user_key") == member.user_key, birth_year=birth_year)}


def member_of_unknown_age(inputs, cfg):
    """check_min_age_met: a member whose birth year is unknown in user state (unknown age is a minor)."""
    member = _a_member(inputs)
    return {**inputs, "state": _set(inputs["state"], F.col("user_key") == member.user_key, birth_year=None)}


def member_opted_out_of_ads(inputs, cfg):
    """check_ads_allowed: a member whose user state says personalized_ads = false."""
    member = _a_member(inputs)
    return {**inputs, "state": _set(inputs["state"], F.col("user_key") == member.user_key, personalized_ads=False)}


def members_of_a_suppressed_segment(inputs, cfg):
    """check_catalog_status: the catalog suppresses (by policy) a segment that has member rows."""
    segment = _published_segment(inputs)
    return {**inputs, "catalog": _set(inputs["catalog"], _in(segment), status="suppressed_policy")}


def catalog_count_above_member_rows(inputs, cfg):
    """check_member_count_matches: the catalog counts one member more than the segment has rows."""
    segment = _published_segment(inputs)
    return {**inputs, "catalog": _set(inputs["catalog"], _in(segment), member_count=F.col("member_count") + 1)}


def member_row_missing(inputs, cfg):
    """check_member_rows_match (published segment): one member row the catalog counts is missing."""
    segment = _published_segment(inputs)
    gone = inputs["members"].where(_in(segment)).orderBy("user_key").first().user_key
    return {**inputs, "members": inputs["members"].where(~(_in(segment) & (F.col("user_key") == gone)))}


def member_row_in_a_suppressed_segment(inputs, cfg):
    """check_member_rows_match (segment not published): a member row for a segment the catalog
    suppresses, in a region that has members (a copy of one of them, moved to that segment)."""
    members = inputs["members"]
    segment = (
        inputs["catalog"]
        .where(F.col("status") != "published")
        .join(members.select("region").distinct(), "region", "left_semi")
        .orderBy("region", "segment_id")
        .first()
    )
    assert segment is not None, "the good day should suppress a segment in a region with members"
    model = members.where(F.col("region") == segment.region).orderBy("segment_id", "user_key").first()
    intruder = members.where(_in(model) & (F.col("user_key") == model.user_key)).withColumn(
        "segment_id", F.lit(segment.segment_id)
    )
    return {**inputs, "members": members.unionByName(intruder)}


def published_below_min_audience(inputs, cfg):
    """check_min_audience_met: a published segment of min_audience_size - 1 members, its catalog row
    counting them right."""
    segment = _published_segment(inputs)
    keep = segment.min_audience_size - 1
    assert segment.member_count > keep
    kept = [r.user_key for r in inputs["members"].where(_in(segment)).orderBy("user_key").limit(keep).collect()]
    return {
        **inputs,
        "members": inputs["members"].where(~_in(segment) | F.col("user_key").isin(kept)),
        "catalog": _set(inputs["catalog"], _in(segment), member_count=keep),
    }


def landing_row_unaccounted(inputs, cfg):
    """check_balanced: a dataset whose landing_rows is one more than accepted + quarantined +
    duplicates + erased."""
    first = inputs["reconciliation"].orderBy("dataset").first().dataset
    parts = F.col("accepted") + F.col("quarantined") + F.col("duplicates") + F.col("erased")
    return {
        **inputs,
        "reconciliation": _set(inputs["reconciliation"], F.col("dataset") == first, landing_rows=parts + 1),
    }


def _with_chat_score(interests, region):
    row = interests.where(F.col("region") == region).orderBy("user_key", "topic").first()
    assert row is not None, f"the good day should have interests in {region}"
    one = (F.col("region") == region) & (F.col("user_key") == row.user_key) & (F.col("topic") == row.topic)
    return _set(interests, one, chat_score=1.0, score=F.col("engagement_score") + 1.0)


def chat_score_where_chat_never_rolled_out(inputs, cfg):
    """check_chat_allowed: an interest with a chat score in a region whose chat rollout has not
    begun on the date (no rollout date, or a later one)."""
    d = inputs["date"]
    not_begun = [name for name, p in cfg.regions.items() if p.chat_signals_from is None or p.chat_signals_from > d]
    row = inputs["interests"].where(F.col("region").isin(not_begun)).orderBy("region").first()
    assert row is not None, f"the good day should have interests in a region without chat: {not_begun}"
    return {**inputs, "interests": _with_chat_score(inputs["interests"], row.region)}


def chat_score_the_day_before_rollout(inputs, cfg):
    """check_chat_allowed: a chat score in the region that rolls chat out first, checked on the day
    before its rollout date."""
    rollouts = sorted((p.chat_signals_from, name) for name, p in cfg.regions.items() if p.chat_signals_from)
    assert rollouts, "conf should roll chat out in some region"
    rollout, region = rollouts[0]
    return {
        **inputs,
        "interests": _with_chat_score(inputs["interests"], region),
        "date": rollout - dt.timedelta(days=1),
    }


# (table, check column) -> recipes planting a violation of the check in its inputs.
CHECK_RECIPES = {
    (t.AUDIENCE_SEGMENTS, "check_catalog_status"): [members_of_a_suppressed_segment],
    (t.AUDIENCE_SEGMENTS, "check_member_count_matches"): [catalog_count_above_member_rows],
    (t.AUDIENCE_SEGMENTS, "check_min_age_met"): [member_too_young, member_of_unknown_age],
    (t.AUDIENCE_SEGMENTS, "check_ads_allowed"): [member_opted_out_of_ads],
    (t.SEGMENT_CATALOG, "check_member_rows_match"): [member_row_missing, member_row_in_a_suppressed_segment],
    (t.SEGMENT_CATALOG, "check_min_audience_met"): [published_below_min_audience],
    (t.INGEST_RECONCILIATION, "check_balanced"): [landing_row_unaccounted],
    (t.USER_INTERESTS, "check_chat_allowed"): [
        chat_score_where_chat_never_rolled_out,
        chat_score_the_day_before_rollout,
    ],
}


def _check_cases():
    for table, exp, on in _critical(checks=True):
        for recipe in CHECK_RECIPES.get((table, on)) or [None]:  # None: fails, naming the missing recipe
            for staged in (False, True) if table in SEGMENT_TABLES else (False,):
                name = recipe.__name__ if recipe else "no-recipe"
                yield pytest.param(
                    table, exp, on, recipe, staged, id=f"{table.qualified}-{on}-{name}" + ("-staged" if staged else "")
                )


def test_every_check_recipe_targets_a_critical_expectation():
    targets = {(table, on) for table, _, on in _critical(checks=True)}
    assert set(CHECK_RECIPES) <= targets


@pytest.mark.parametrize("table,exp,column,recipe,staged", list(_check_cases()))
def test_bad_input_behind_each_critical_check_blocks_the_gate(
    spark, two_nights, good_inputs, table, exp, column, recipe, staged
):
    """The check column is computed by the product from the good day's inputs plus planted rows;
    among the table's critical checks, exactly the targeted one fails and blocks the gate."""
    if recipe is None:
        raise AssertionError(f"no input recipe for {table.qualified} {exp['type']}({column}): add one to CHECK_RECIPES")
    cfg = two_nights["cfg"]
    bad = _checked(table, cfg, recipe(good_inputs[staged], cfg), staged)
    checks = _check_expectations(table)
    results = quality.validate(
        spark,
        cfg,
        D2,
        f"input-{table.qualified}",
        [table],
        staged=staged,
        frames={table: bad},
        select=lambda x: x in checks,
        data_docs=False,
    )
    assert len(results) == len(checks) and {r.severity for r in results} == {"critical"}
    assert [(r.expectation, r.column) for r in results if not r.success] == [(exp["type"], column)]
    stage = next(s.name for s in STAGES if table in s.gate)
    with pytest.raises(QualityGateError, match=re.escape(f"{exp['type']}({column})")):
        quality.check(cfg, D2, stage, results)


def test_warnings_are_recorded_but_do_not_block(spark, good_day):
    cfg = good_day["cfg"]
    chat = good_day["frames"][t.CHAT_MESSAGES]
    assert good_day["params"]["chat_messages_min_rows"] > 10, "the trailing day gives a drift band"
    results = quality.validate(
        spark, cfg, D2, "drift-check", [t.CHAT_MESSAGES], frames={t.CHAT_MESSAGES: chat.limit(10)}, data_docs=False
    )
    failed = [r for r in results if not r.success]
    assert [(r.expectation, r.severity) for r in failed] == [("expect_table_row_count_to_be_between", "warning")]
    assert failed[0].observed == "10"
    quality.check(cfg, D2, "ingest", results)  # does not raise
    recorded = (
        spark.read.format("delta")
        .load(t.VALIDATION_RESULTS.path(cfg.warehouse))
        .where((F.col("run_id") == "drift-check") & ~F.col("success"))
        .collect()
    )
    assert [(r.table_name, r.severity, r.observed_value) for r in recorded] == [
        ("bronze.chat_messages", "warning", "10")
    ]


def test_publish_gate_on_staged_segments_keeps_the_published_snapshot(spark, two_nights, small_audience_conf, tmp_path):
    """The night is re-staged and a member row for a segment the catalog suppresses is slipped into
    staging: publish refuses, and the published catalog and members stay as they were."""
    from jobs.config import load_config
    from jobs.context import RunContext
    from jobs.pipeline import run_stage

    cfg = load_config(
        small_audience_conf, profile="test", landing=two_nights["cfg"].landing, warehouse=tmp_path / "warehouse"
    )
    shutil.copytree(two_nights["cfg"].warehouse, cfg.warehouse)
    run_stage(RunContext.start(spark, cfg, D2, run_id="restaged-run"), "segments")
    staged = (
        spark.read.format("delta")
        .load(t.SEGMENTS_STAGING.path(cfg.warehouse))
        .where(F.col("snapshot_date") == F.lit(D2))
    )
    suppressed = (
        spark.read.format("delta")
        .load(t.CATALOG_STAGING.path(cfg.warehouse))
        .where((F.col("snapshot_date") == F.lit(D2)) & (F.col("status") != "published"))
        .first()
    )
    intruder = (
        staged.limit(1)
        .withColumn("segment_id", F.lit(suppressed.segment_id))
        .withColumn("region", F.lit(suppressed.region))
    )
    assert intruder.count() == 1
    intruder.write.format("delta").mode("append").save(t.SEGMENTS_STAGING.path(cfg.warehouse))
    catalog = DeltaTable.forPath(spark, t.SEGMENT_CATALOG.path(cfg.warehouse))
    members = DeltaTable.forPath(spark, t.AUDIENCE_SEGMENTS.path(cfg.warehouse))
    before = (catalog.history(1).first().version, members.history(1).first().version)
    with pytest.raises(QualityGateError, match="check_catalog_status"):
        run_stage(RunContext.start(spark, cfg, D2, run_id="restaged-run"), "publish")
    assert (catalog.history(1).first().version, members.history(1).first().version) == before


def test_planted_violation_stops_audience_run_before_publication(spark, two_nights, tmp_path, capsys):
    """Acceptance: an otherwise good day whose history holds a sensitive-topic signal (as an older
    release might have written) makes `audience run` exit non-zero naming the expectation; the
    catalog's latest snapshot stays the previous date; the Data Docs show the failure."""
    cfg = two_nights["cfg"]
    warehouse = tmp_path / "warehouse"
    shutil.copytree(two_nights["after_d1"], warehouse)
    signals = t.DAILY_SIGNALS.path(warehouse)
    sensitive = sorted(x.topic_id for x in cfg.topics.values() if x.sensitive)[0]
    (
        spark.read.format("delta")
        .load(signals)
        .where((F.col("signal_date") == F.lit(D1)) & (F.col("source") == "engagement"))
        .limit(1)
        .withColumn("topic", F.lit(sensitive))
        .write.format("delta")
        .mode("append")
        .save(signals)
    )
    # The command line's own entry point, in this process: its session is the suite's warm one.
    code = main(
        ["--profile", "test", "--conf", str(cfg.conf_dir), "--landing", str(cfg.landing)]
        + ["--warehouse", str(warehouse), "run", "--date", str(D2)]
    )
    stderr = capsys.readouterr().err
    assert code != 0
    error = stderr.strip().splitlines()[-1]
    assert "gold.user_interests" in error and "expect_column_values_to_not_be_in_set(topic)" in error, error
    assert "Traceback" not in stderr
    catalog = spark.read.format("delta").load(t.SEGMENT_CATALOG.path(warehouse))
    assert catalog.agg(F.max("snapshot_date")).first()[0] == D1
    interests = spark.read.format("delta").load(t.USER_INTERESTS.path(warehouse))
    assert interests.where(F.col("snapshot_date") == F.lit(D2)).count() == 0, "the failed stage was rolled back"
    docs = tmp_path / "data_docs" / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert str(docs / "index.html") in error
    pages = list((docs / "validations" / "gold" / "user_interests").rglob("*.html"))
    assert len(pages) == 1 and "Failed" in pages[0].read_text()
    assert "gold.user_interests" in (docs / "index.html").read_text()
    # The same stage run alone, as its Airflow task runs it: stopped by its gate, it records no duration.
    from jobs.config import load_config
    from jobs.context import RunContext
    from jobs.pipeline import run_stage

    alone = load_config(cfg.conf_dir, "test", cfg.landing, warehouse)
    with pytest.raises(QualityGateError, match="rolled back"):
        run_stage(RunContext.start(spark, alone, D2, run_id="interests-alone"), "interests")
    runs = spark.read.format("delta").load(t.STAGE_RUNS.path(warehouse))
    assert runs.where(F.col("run_id") == "interests-alone").count() == 0


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
