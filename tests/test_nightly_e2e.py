"""The nightly flow end to end on generated days, with real Spark and Delta."""

import datetime as dt
import json
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs import context
from jobs import tables as t
from jobs.context import RunContext
from jobs.gold import stage as gold

pytestmark = pytest.mark.slow
D1, D2 = dt.date(2025, 12, 16), dt.date(2025, 12, 17)


@pytest.fixture(scope="module")
def nightly_runs(two_nights):
    return two_nights


def test_erased_conversations_and_messages_leave_every_table_the_same_night(spark, nightly_runs):
    cfg = nightly_runs["cfg"]
    requests = spark.read.format("delta").load(t.ERASURE_REQUESTS.path(cfg.warehouse))
    convs = [r.target_id for r in requests.where("scope = 'conversation'").collect()]
    msgs = [r.target_id for r in requests.where("scope = 'message'").collect()]
    accounts = [r.user_key for r in requests.where("scope = 'account'").collect()]
    assert convs and msgs and accounts
    for table in (t.CHAT_MESSAGES, t.CHAT_TOPICS):
        frame = spark.read.format("delta").load(table.path(cfg.warehouse))
        assert (
            frame.where(
                F.col("conversation_id").isin(convs) | F.col("message_id").isin(msgs) | F.col("user_key").isin(accounts)
            ).count()
            == 0
        ), table.qualified
    for table in (t.ENGAGEMENT_EVENTS, t.DAILY_SIGNALS, t.USER_INTERESTS, t.AUDIENCE_SEGMENTS, t.QUARANTINE):
        frame = spark.read.format("delta").load(table.path(cfg.warehouse))
        assert frame.where(F.col("user_key").isin(accounts)).count() == 0, table.qualified
    log = spark.read.format("delta").load(t.ERASURE_LOG.path(cfg.warehouse))
    assert log.count() == requests.count()


def test_the_catalog_names_the_learned_tagger_that_the_conf_points_at(spark, nightly_runs):
    cfg = nightly_runs["cfg"]
    configured = json.loads((Path(cfg.tagger_model) / "manifest.json").read_text(encoding="utf-8"))["version"]
    catalog = spark.read.format("delta").load(t.SEGMENT_CATALOG.path(cfg.warehouse))
    assert {r.tagger_version for r in catalog.select("tagger_version").distinct().collect()} == {configured}


def test_assistant_turns_never_become_signals(spark, nightly_runs):
    cfg = nightly_runs["cfg"]
    assistant = spark.read.format("delta").load(t.CHAT_MESSAGES.path(cfg.warehouse)).where("role = 'assistant'")
    topics = spark.read.format("delta").load(t.CHAT_TOPICS.path(cfg.warehouse))
    assert topics.count() > 0
    assert topics.join(assistant, on="message_id", how="left_semi").count() == 0


def test_no_sensitive_topic_and_no_text_past_bronze(spark, nightly_runs):
    cfg = nightly_runs["cfg"]
    sensitive = [x.topic_id for x in cfg.topics.values() if x.sensitive]
    for table, column in (
        (t.CHAT_TOPICS, "topic"),
        (t.DAILY_SIGNALS, "topic"),
        (t.USER_INTERESTS, "topic"),
        (t.AUDIENCE_SEGMENTS, "segment_id"),
        (t.SEGMENT_CATALOG, "segment_id"),
    ):
        frame = spark.read.format("delta").load(table.path(cfg.warehouse))
        assert not {"text", "query_text"} & set(frame.columns)
        assert frame.where(F.col(column).isin(sensitive)).count() == 0, table.qualified


def test_members_belong_to_published_catalog_rows_with_matching_counts(spark, nightly_runs):
    cfg = nightly_runs["cfg"]
    catalog = (
        spark.read.format("delta")
        .load(t.SEGMENT_CATALOG.path(cfg.warehouse))
        .where(F.col("snapshot_date") == F.lit(D2))
    )
    members = (
        spark.read.format("delta")
        .load(t.AUDIENCE_SEGMENTS.path(cfg.warehouse))
        .where(F.col("snapshot_date") == F.lit(D2))
    )
    counts = {(r.region, r.segment_id): r["count"] for r in members.groupBy("region", "segment_id").count().collect()}
    published = {(r.region, r.segment_id): r.member_count for r in catalog.where("status = 'published'").collect()}
    assert published and counts == published


def _publish_dying_before_the_catalog_commit(spark, cfg, day, run_id, monkeypatch):
    """Run `publish` so that it dies between its member commit and its catalog commit; returns the
    real writer, to put back for the retry."""
    original = context.replace_partition

    def die_on_catalog(frame, table, *args, **kwargs):
        if table is t.SEGMENT_CATALOG:
            raise RuntimeError("killed between the member commit and the catalog commit")
        return original(frame, table, *args, **kwargs)

    monkeypatch.setattr(context, "replace_partition", die_on_catalog)
    with pytest.raises(RuntimeError):
        gold.publish(RunContext.start(spark, cfg, day, run_id=run_id))
    return original


def readme_audience_query(cfg) -> str:
    """The README's query for the current audience, pointed at this warehouse's tables."""
    from jobs import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    query = readme.split("<!-- current-audience -->")[1].split("```sql")[1].split("```")[0]
    for table in (t.AUDIENCE_SEGMENTS, t.SEGMENT_CATALOG):
        query = query.replace(table.qualified, f"delta.`{table.path(cfg.warehouse)}`")
    return query


@pytest.mark.parametrize("snippet", ["polars-audience", "duckdb-audience"])
def test_the_readmes_queries_without_spark_give_the_current_audience_as_spark_does(spark, nightly_runs, snippet):
    """An analyst without Spark (delta-rs with Polars or DuckDB, README "Without Spark") reads the
    same current audience as the README's Spark SQL."""
    from jobs import REPO_ROOT

    cfg = nightly_runs["cfg"]
    readme = (REPO_ROOT / "README.md").read_text()
    code = readme.split(f"<!-- {snippet} -->")[1].split("```python")[1].split("```")[0]
    names = {"WAREHOUSE": str(cfg.warehouse)}
    exec(code, names)  # noqa: S102 - the README's own example
    columns = ["region", "segment_id", "user_key"]
    audience = names["audience"]  # a Polars frame or a DuckDB relation
    rows = audience.select(columns).rows() if snippet == "polars-audience" else audience.select(*columns).fetchall()
    ours = spark.sql(readme_audience_query(cfg)).select(*columns).collect()
    assert ours and sorted(rows) == sorted(tuple(r) for r in ours)


def test_every_query_of_the_cookbook_runs_and_agrees_with_the_published_audience(spark, nightly_runs):
    """docs/queries.md, each query on the warehouse after two nights: the sizes per region and the
    members by source add up to the current audience, quarantine reasons to the quarantined rows,
    the history names the run of every commit, and DESCRIBE shows the declared comments."""
    import re

    from jobs import REPO_ROOT

    cfg = nightly_runs["cfg"]
    page = (REPO_ROOT / "docs" / "queries.md").read_text()
    homes = {x.qualified: f"delta.`{x.path(cfg.warehouse)}`" for x in t.ALL_TABLES}
    queries = {
        name: re.sub(r"\b[a-z]+\.[a-z_]+\b", lambda m: homes.get(m.group(0), m.group(0)), sql)
        for name, sql in re.findall(r"<!-- query: ([a-z-]+) -->\n```sql\n(.*?)```", page, re.S)
    }
    assert len(queries) == page.count("<!-- query:") == 8
    rows = {name: spark.sql(sql).collect() for name, sql in queries.items()}
    assert all(rows.values()), [name for name, found in rows.items() if not found]
    audience = len(rows["current-audience"])
    assert audience == spark.sql(readme_audience_query(cfg)).count()
    latest = max(r.snapshot_date for r in rows["sizes-over-time"])
    assert sum(r.members for r in rows["sizes-over-time"] if r.snapshot_date == latest) == audience
    assert sum(r.members for r in rows["members-by-source"] if r.snapshot_date == latest) == audience
    quarantined = spark.read.format("delta").load(t.QUARANTINE.path(cfg.warehouse)).count()
    assert sum(r.rows for r in rows["quarantine-reasons"]) == quarantined
    assert all(r.userMetadata.startswith("audience run ") for r in rows["history"])
    described = {r.col_name: (r.data_type, r.comment) for r in rows["describe"]}
    assert described["user_key"][1] == t.COLUMN_DOCS["user_key"]
    assert described["Comment"][0] == t.AUDIENCE_SEGMENTS.doc


def test_republishing_a_date_switches_readers_from_one_complete_publication_to_the_next(
    spark, nightly_runs, monkeypatch
):
    """A date published again (new run id, Airflow clear, backfill) and killed between its member
    commit and its catalog commit: readers following the README see the previous publication,
    whole; the retry switches them to the new one and leaves no rows of the dead attempt."""
    cfg = nightly_runs["cfg"]
    latest = (
        spark.read.format("delta").load(t.SEGMENT_CATALOG.path(cfg.warehouse)).agg(F.max("snapshot_date")).first()[0]
    )
    read = lambda: sorted(
        map(
            tuple,
            spark.sql(readme_audience_query(cfg))
            .drop(  # noqa: E731
                "publication_id"
            )
            .collect(),
        ),
        key=repr,
    )
    before = read()
    catalog = (
        spark.read.format("delta")
        .load(t.SEGMENT_CATALOG.path(cfg.warehouse))
        .where(F.col("snapshot_date") == F.lit(latest))
    )
    assert before and len(before) == catalog.where("status = 'published'").agg(F.sum("member_count")).first()[0]
    gold.segments(
        RunContext.start(
            spark, cfg, latest, run_id="republish-run", as_of=dt.datetime(2026, 1, 1, 3, tzinfo=dt.timezone.utc)
        )
    )
    original = _publish_dying_before_the_catalog_commit(spark, cfg, latest, "republish-run", monkeypatch)
    members = (
        spark.read.format("delta")
        .load(t.AUDIENCE_SEGMENTS.path(cfg.warehouse))
        .where(F.col("snapshot_date") == F.lit(latest))
    )
    assert members.count() == 2 * len(before), "the dead attempt's rows are stored, not visible"
    assert read() == before
    monkeypatch.setattr(context, "replace_partition", original)
    gold.publish(RunContext.start(spark, cfg, latest, run_id="republish-run"))
    assert read() == before, "same staged data, so the same audience"
    assert members.count() == len(before), "only the visible publication's rows remain"
    assert {r.publication_id for r in members.select("publication_id").distinct().collect()} == {
        r.publication_id
        for r in spark.read.format("delta")
        .load(t.SEGMENT_CATALOG.path(cfg.warehouse))
        .where(F.col("snapshot_date") == F.lit(latest))
        .select("publication_id")
        .distinct()
        .collect()
    }


def test_run_killed_before_publication_leaves_the_previous_snapshot_published(
    spark, nightly_runs, monkeypatch, gold_snapshot
):
    cfg = nightly_runs["cfg"]
    d3 = D2 + dt.timedelta(days=1)
    published_before = gold_snapshot(cfg.warehouse, t.AUDIENCE_SEGMENTS, D2).localCheckpoint()
    gold.segments(
        RunContext.start(
            spark, cfg, d3, run_id="killed-run", as_of=dt.datetime(2025, 12, 19, 3, tzinfo=dt.timezone.utc)
        )
    )
    original = _publish_dying_before_the_catalog_commit(spark, cfg, d3, "killed-run", monkeypatch)
    catalog = spark.read.format("delta").load(t.SEGMENT_CATALOG.path(cfg.warehouse))
    assert catalog.agg(F.max("snapshot_date")).first()[0] == D2
    assert_df_equality(
        gold_snapshot(cfg.warehouse, t.AUDIENCE_SEGMENTS, D2),
        published_before,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    monkeypatch.setattr(context, "replace_partition", original)
    gold.publish(RunContext.start(spark, cfg, d3, run_id="killed-run"))  # the retry completes the publication
    catalog = spark.read.format("delta").load(t.SEGMENT_CATALOG.path(cfg.warehouse))
    assert catalog.agg(F.max("snapshot_date")).first()[0] == d3
    assert catalog.where(F.col("snapshot_date") == F.lit(d3)).count() == len(cfg.regions) * 28
