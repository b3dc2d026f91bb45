"""The signals stage of one logical date: user chat turns and engagement queries tagged (vocabulary
and learned model), chat topics of sensitive conversations suppressed on every date, daily
aggregates per user, topic and source."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from jobs import tables as t
from jobs.context import RunContext
from jobs.io import merge_into
from jobs.silver import signals as sig
from jobs.silver import tagger_model
from jobs.silver.tagger import vocabulary_frame
from jobs.silver.user_state import latest_per_user, region_frame

_NO_ENGAGEMENT = "user_key string, topic string, event_type string, signal_date date"


def run(ctx: RunContext) -> dict:
    spark, cfg, d = ctx.spark, ctx.cfg, ctx.logical_date
    vocab = vocabulary_frame(spark, cfg).cache()
    model = tagger_model.load(cfg.tagger_model)
    state = ctx.read(t.USER_STATE).where(F.col("state_date") == F.lit(d))
    # Objecting on D, or now (the latest preference of all): a re-run of a date before someone's
    # objection does not bring their chat signals back.
    objecting_now = (
        latest_per_user(ctx.read(t.AD_PREFERENCES), dt.date.max).where(~F.col("ai_chat_ads")).select("user_key")
    )
    opted_out = state.where(~F.col("ai_chat_ads")).select("user_key").union(objecting_now).distinct()
    day = F.col("ingest_date") == F.lit(d)
    turns = ctx.read(t.CHAT_MESSAGES).where(day & (F.col("role") == "user"))
    tagger = {"vocab": vocab, "model": model, "languages": cfg.languages, "negation_window": cfg.negation_window}
    tags = sig.tag_frame(turns, "message_id", "text", "language", **tagger)
    chat_rows, suppressed = sig.chat_topics(
        turns.select("message_id", "conversation_id", "user_key", "country", "ingest_date"),
        tags,
        region_frame(spark, cfg.country_region),
        sig.region_policy_frame(spark, cfg.regions),
        cfg.default_region,
        opted_out,
    )
    chat_rows = suppress_sensitive_conversations(ctx, chat_rows, suppressed).cache()
    ctx.replace(chat_rows, t.CHAT_TOPICS, {"signal_date": d})
    events = ctx.read(t.ENGAGEMENT_EVENTS).where(day)
    query_tags = sig.tag_frame(events.where(F.col("query_text").isNotNull()), "event_id", "query_text", None, **tagger)
    eng_rows = sig.engagement_topics(events, query_tags, [x.topic_id for x in cfg.targetable_topics])
    daily = sig.daily_signals(
        chat_rows, eng_rows, cfg.engagement_weights, cfg.chat_turn_weight, cfg.daily_cap_per_topic
    )
    ctx.replace(daily, t.DAILY_SIGNALS, {"signal_date": d})
    rows = ctx.read(t.DAILY_SIGNALS).where(F.col("signal_date") == F.lit(d)).count()
    chat_rows.unpersist()
    return {"daily_signals": rows, "tagger": model.version}


def suppress_sensitive_conversations(ctx: RunContext, chat_rows, flagged_tonight):
    """A conversation with a sensitive user turn on any night yields no signals from any turn.

    Tonight's flagged conversations replace the date's partition of silver.sensitive_conversations;
    tonight's rows lose every conversation flagged on any date (earlier or, in an out-of-order
    backfill, later), and other dates' chat topics lose the conversations flagged tonight, with
    their daily aggregates rebuilt. So the rule holds whatever order dates are run or re-run in.
    Returns tonight's chat topic rows."""
    d = ctx.logical_date
    flags = flagged_tonight.select("conversation_id", F.lit(d).alias("flagged_date"))
    ctx.replace(flags, t.SENSITIVE_CONVERSATIONS, {"flagged_date": d})
    every_flag = ctx.read(t.SENSITIVE_CONVERSATIONS).select("conversation_id").distinct()
    if ctx.exists(t.CHAT_TOPICS):
        tonight = ctx.read(t.SENSITIVE_CONVERSATIONS).where(F.col("flagged_date") == F.lit(d))
        others = ctx.read(t.CHAT_TOPICS).where(F.col("signal_date") != F.lit(d))
        # a handful of dates at most (a conversation spans a few nights)
        dates = [
            r.signal_date
            for r in others.join(tonight, on="conversation_id", how="left_semi")
            .select("signal_date")
            .distinct()
            .collect()
        ]
        if dates:
            merge_into(
                tonight,
                t.CHAT_TOPICS.path(ctx.cfg.warehouse),
                f"t.conversation_id = s.conversation_id AND t.signal_date != '{d}'",
                "WHEN MATCHED THEN DELETE",
            )
            for signal_date in sorted(dates):
                rebuild_chat_daily(ctx, signal_date)
    return chat_rows.join(every_flag, on="conversation_id", how="left_anti")


def rebuild_chat_daily(ctx: RunContext, signal_date: dt.date) -> None:
    """Re-aggregate one date's chat part of silver.daily_signals from silver.chat_topics (after
    erasures, objections or a later-flagged conversation removed some of its rows)."""
    if not ctx.exists(t.DAILY_SIGNALS):
        return
    cfg = ctx.cfg
    topics = ctx.read(t.CHAT_TOPICS).where(F.col("signal_date") == F.lit(signal_date))
    empty = ctx.spark.createDataFrame([], _NO_ENGAGEMENT)
    daily = sig.daily_signals(topics, empty, cfg.engagement_weights, cfg.chat_turn_weight, cfg.daily_cap_per_topic)
    ctx.replace(daily, t.DAILY_SIGNALS, {"signal_date": signal_date, "source": "chat"})
