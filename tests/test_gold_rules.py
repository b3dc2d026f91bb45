"""Scoring and membership rules (SPEC sections 4, 6, 8) on tiny inline frames."""

import datetime as dt

import pytest
from pyspark.sql import functions as F

from jobs.gold import segments as seg
from jobs.silver.signals import region_policy_frame

D = dt.date(2026, 1, 10)
STATE_SCHEMA = (
    "user_key string, birth_year int, country string, region string, ai_chat_ads boolean, "
    "personalized_ads boolean, has_profile boolean, state_date date"
)
SIGNAL_SCHEMA = "user_key string, topic string, source string, signal_date date, weight double, signals long"


@pytest.fixture(scope="module")
def policies(spark, cfg):
    return region_policy_frame(spark, cfg.regions)


def _state(spark, rows):
    return spark.createDataFrame([(u, by, c, r, chat, pers, True, D) for u, by, c, r, chat, pers in rows], STATE_SCHEMA)


def _scores(spark, policies, signals, state, day=D):
    frame = seg.interests(spark.createDataFrame(signals, SIGNAL_SCHEMA), state, policies, day)
    return {(r.user_key, r.topic): (r.chat_score, r.engagement_score) for r in frame.collect()}


def test_score_decays_by_half_life_and_ignores_signals_past_the_lookback(spark, policies):
    state = _state(spark, [("u", 1980, "FR", "EU", True, True)])
    signals = [
        ("u", "travel", "engagement", D - dt.timedelta(days=7), 4.0, 1),
        ("u", "travel", "engagement", D, 1.0, 1),
        ("u", "travel", "engagement", D - dt.timedelta(days=30), 100.0, 1),
    ]
    chat, engagement = _scores(spark, policies, signals, state)[("u", "travel")]
    assert chat == 0 and engagement == pytest.approx(4.0 * 0.5 + 1.0)


def test_us_chat_only_interest_counts_only_from_the_us_rollout_date(spark, cfg):
    rollout = dt.date(2026, 1, 5)
    policies = region_policy_frame(spark, cfg.with_policy("US", chat_signals_from=rollout).regions)
    state = _state(spark, [("u", 1980, "US", "US", True, True)])
    signals = [("u", "music", "chat", rollout - dt.timedelta(days=2), 5.0, 3)]
    not_rolled_out = _scores(spark, region_policy_frame(spark, cfg.regions), signals, state, day=D)
    before = _scores(spark, policies, signals, state, day=rollout - dt.timedelta(days=1))
    after = _scores(spark, policies, signals, state, day=rollout)
    assert not_rolled_out.get(("u", "music"), (0.0, 0.0))[0] == 0.0
    assert before.get(("u", "music"), (0.0, 0.0))[0] == 0.0
    assert after[("u", "music")][0] > 0


def test_opted_out_users_past_chat_no_longer_counts(spark, policies):
    state = _state(spark, [("out", 1980, "FR", "EU", False, True), ("in", 1980, "FR", "EU", True, True)])
    signals = [(u, "cooking", "chat", D - dt.timedelta(days=3), 5.0, 3) for u in ("out", "in")]
    scores = _scores(spark, policies, signals, state)
    assert scores.get(("out", "cooking"), (0.0, 0.0))[0] == 0.0
    assert scores[("in", "cooking")][0] > 0


def _members(spark, policies, users, score=5.0, rank=1, topic="travel"):
    interests = spark.createDataFrame(
        [(D, r, u, topic, score, score, 0.0, D, rank) for u, _, _, r, _, _ in users],
        "snapshot_date date, region string, user_key string, topic string, score double, chat_score double, "
        "engagement_score double, last_signal_date date, topic_rank int",
    )
    return {r.user_key for r in seg.members(interests, _state(spark, users), policies, D).collect()}


def test_minors_unknown_ages_and_personalized_ads_objectors_are_never_members(spark, policies):
    users = [
        ("adult", D.year - 30, "FR", "EU", True, None),
        ("minor", D.year - 16, "FR", "EU", True, True),
        ("unknown", None, "FR", "EU", True, True),
        ("objector", 1980, "FR", "EU", True, False),
        ("just18", D.year - 18, "FR", "EU", True, True),
    ]
    # born D.year-18 may still be 17 on D: only the youngest possible age is trusted
    assert _members(spark, policies, users) == {"adult"}


def test_score_below_min_score_or_topic_outside_top_k_is_not_a_member(spark, policies):
    users = [("u", 1980, "FR", "EU", True, True)]
    assert _members(spark, policies, users, score=2.99) == set()
    assert _members(spark, policies, users, rank=6) == set()
    assert _members(spark, policies, users, score=3.0, rank=5) == {"u"}


def _candidates(spark, n, segment):
    return [(D, "EU", segment, f"{segment}-{i}", 5.0, 5.0, 0.0, D) for i in range(n)]


def test_99_members_are_suppressed_and_100_published(spark, policies, cfg):
    rows = _candidates(spark, 99, "travel") + _candidates(spark, 100, "music")
    candidates = spark.createDataFrame(
        rows,
        "snapshot_date date, region string, segment_id string, "
        "user_key string, score double, chat_score double, "
        "engagement_score double, last_signal_date date",
    )
    defs = spark.createDataFrame(
        [(t.topic_id, t.name, t.iab_audience_id) for t in cfg.targetable_topics],
        "segment_id string, segment_name string, iab_audience_id string",
    )
    catalog = seg.catalog(candidates, defs, policies, D, "run-1", dt.datetime(2026, 1, 11, 3), "tagger-test")
    eu = {r.segment_id: r for r in catalog.where(F.col("region") == "EU").collect()}
    assert (eu["travel"].status, eu["travel"].member_count) == ("suppressed_min_audience", 99)
    assert (eu["music"].status, eu["music"].member_count) == ("published", 100)
    assert eu["music"].iab_audience_id == "481" and eu["music"].sources == ["chat"]
    assert eu["music"].refresh == "daily" and eu["music"].min_audience_size == 100
    published = {r.segment_id for r in seg.published_members(candidates, catalog).collect()}
    assert published == {"music"}
    assert catalog.count() == len(cfg.regions) * 28


def test_segment_the_regions_policy_blocks_is_suppressed_whatever_its_size(spark, cfg):
    policies = region_policy_frame(spark, cfg.with_policy("EU", blocked_segments=("wine_spirits",)).regions)
    candidates = spark.createDataFrame(
        _candidates(spark, 150, "wine_spirits"),
        "snapshot_date date, region string, segment_id string, user_key string, "
        "score double, chat_score double, engagement_score double, last_signal_date date",
    )
    defs = spark.createDataFrame(
        [(t.topic_id, t.name, t.iab_audience_id) for t in cfg.targetable_topics],
        "segment_id string, segment_name string, iab_audience_id string",
    )
    catalog = seg.catalog(candidates, defs, policies, D, "run-1", dt.datetime(2026, 1, 11, 3), "tagger-test")
    row = catalog.where("region = 'EU' AND segment_id = 'wine_spirits'").first()
    assert (row.status, row.member_count) == ("suppressed_policy", 150)
    assert seg.published_members(candidates, catalog).count() == 0
