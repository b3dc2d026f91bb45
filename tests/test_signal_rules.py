"""Signal rules (SPEC sections 5-7) on tiny inline frames: suppression, sources, no sensitive topics."""

import datetime as dt

import pytest

from jobs.silver import signals as sig
from jobs.silver.user_state import region_frame

D = dt.date(2026, 1, 10)
TURNS = "message_id string, conversation_id string, user_key string, country string, ingest_date date"
TAGS = "message_id string, topics array<string>, sensitive array<string>"


def _chat(spark, cfg, turns, tags, mode="conversation", opted_out=()):
    policies = sig.region_policy_frame(spark, cfg.with_policy("EU", sensitive_suppression=mode).regions)
    rows, _ = sig.chat_topics(
        spark.createDataFrame(turns, TURNS),
        spark.createDataFrame(tags, TAGS),
        region_frame(spark, cfg.country_region),
        policies,
        cfg.default_region,
        spark.createDataFrame([(u,) for u in opted_out], "user_key string"),
    )
    return sorted((r.message_id, r.topic) for r in rows.collect())


TURN_ROWS = [("m1", "c1", "u", "FR", D), ("m2", "c1", "u", "FR", D), ("m3", "c2", "u", "FR", D)]
TAG_ROWS = [("m1", ["travel"], []), ("m2", ["football"], ["health"]), ("m3", ["cooking", "wine_spirits"], [])]


def test_sensitive_turn_suppresses_its_whole_conversation_by_default(spark, cfg):
    assert _chat(spark, cfg, TURN_ROWS, TAG_ROWS) == [("m3", "cooking"), ("m3", "wine_spirits")]


def test_message_suppression_drops_only_the_sensitive_turn(spark, cfg):
    assert _chat(spark, cfg, TURN_ROWS, TAG_ROWS, mode="message") == [
        ("m1", "travel"),
        ("m3", "cooking"),
        ("m3", "wine_spirits"),
    ]


def test_user_objecting_to_chat_ads_yields_no_chat_topics(spark, cfg):
    assert _chat(spark, cfg, TURN_ROWS, TAG_ROWS, opted_out=["u"]) == []


def test_sensitive_object_topic_or_sensitive_query_is_never_used(spark, cfg):
    events = spark.createDataFrame(
        [
            ("e1", "u", "like", "health", None, D),
            ("e2", "u", "follow", "running", None, D),
            ("e3", "u", "search", None, "diabetes diet tips", D),
            ("e4", "u", "search", None, "running shoes", D),
        ],
        "event_id string, user_key string, event_type string, object_topic string, query_text string, ingest_date date",
    )
    tags = spark.createDataFrame(
        [("e3", ["cooking"], ["health"]), ("e4", ["running"], [])],
        "event_id string, topics array<string>, sensitive array<string>",
    )
    rows = sig.engagement_topics(events, tags, [t.topic_id for t in cfg.targetable_topics]).collect()
    assert sorted((r.topic, r.event_type) for r in rows) == [("running", "follow"), ("running", "search")]


def test_daily_weight_uses_conf_weights_and_is_capped(spark, cfg):
    chat = spark.createDataFrame(
        [("m", "c", "u", D, "travel")] * 10,
        "message_id string, conversation_id string, user_key string, signal_date date, topic string",
    )
    eng = spark.createDataFrame(
        [("u", "travel", "follow", D), ("u", "travel", "view", D)],
        "user_key string, topic string, event_type string, signal_date date",
    )
    daily = {
        r.source: r.weight
        for r in sig.daily_signals(
            chat, eng, cfg.engagement_weights, cfg.chat_turn_weight, cfg.daily_cap_per_topic
        ).collect()
    }
    assert daily == {
        "chat": cfg.daily_cap_per_topic,
        "engagement": pytest.approx(cfg.engagement_weights["follow"] + cfg.engagement_weights["view"]),
    }
