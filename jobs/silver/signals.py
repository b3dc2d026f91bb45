"""bronze -> silver: topic signals from chat user turns and engagement events, and their daily
aggregate per user, topic and source. No text leaves bronze; sensitive categories are used only
to suppress, inside the job, and are never written.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.config import RegionPolicy
from jobs.silver.tagger import tag
from jobs.tables import CHAT, ENGAGEMENT


def region_policy_frame(spark, regions: dict[str, RegionPolicy]) -> DataFrame:
    """One row per region: its policy, for joins."""
    rows = [
        (
            name,
            p.sensitive_suppression,
            p.chat_signals_from,
            p.honor_chat_opt_out,
            p.min_age,
            p.min_audience_size,
            p.lookback_days,
            float(p.half_life_days),
            float(p.min_score),
            p.top_k,
            list(p.blocked_segments),
        )
        for name, p in regions.items()
    ]
    return spark.createDataFrame(
        rows,
        "region string, sensitive_suppression string, chat_signals_from date, "
        "honor_chat_opt_out boolean, min_age int, min_audience_size int, "
        "lookback_days int, half_life_days double, min_score double, top_k int, "
        "blocked_segments array<string>",
    )


def chat_topics(
    user_turns: DataFrame,
    tags: DataFrame,
    regions: DataFrame,
    policies: DataFrame,
    default_region: str,
    opted_out: DataFrame,
) -> tuple[DataFrame, DataFrame]:
    """(topic rows kept, conversation ids suppressed) for the night's user turns.

    user_turns: message_id, conversation_id, user_key, country, ingest_date (role=user only).
    A sensitive turn suppresses its conversation or only itself, per the region's policy.
    Users who object to chat-derived ads yield no chat topics.
    """
    tagged = (
        user_turns.join(tags, on="message_id", how="inner")
        .join(F.broadcast(regions), on="country", how="left")
        .select("*", F.coalesce("region", F.lit(default_region)).alias("msg_region"))
        .drop("region")
        .join(
            F.broadcast(policies.select(F.col("region").alias("msg_region"), "sensitive_suppression")),
            on="msg_region",
            how="left",
        )
    )
    is_sensitive = F.size("sensitive") > 0
    suppressed_conversations = (
        tagged.where(is_sensitive & (F.col("sensitive_suppression") == "conversation"))
        .select("conversation_id")
        .distinct()
    )
    kept = (
        tagged.where(~is_sensitive)
        .join(suppressed_conversations, on="conversation_id", how="left_anti")
        .join(opted_out, on="user_key", how="left_anti")
    )
    rows = kept.select(
        "message_id",
        "conversation_id",
        "user_key",
        F.col("ingest_date").alias("signal_date"),
        F.explode("topics").alias("topic"),
    )
    return rows, suppressed_conversations


def engagement_topics(events: DataFrame, query_tags: DataFrame, targetable: list[str]) -> DataFrame:
    """user_key, topic, event_type, signal_date: object_topic, or the tagged query of a search.
    A sensitive object_topic, or a query with any sensitive category, gives nothing."""
    with_tags = events.join(query_tags, on="event_id", how="left")
    from_object = with_tags.where(F.col("object_topic").isin(*targetable)).select(
        "user_key", F.col("object_topic").alias("topic"), "event_type", "ingest_date"
    )
    from_query = with_tags.where(
        F.col("object_topic").isNull()
        & F.col("query_text").isNotNull()
        & (F.size(F.coalesce("sensitive", F.array())) == 0)
    ).select("user_key", F.explode("topics").alias("topic"), "event_type", "ingest_date")
    return from_object.unionByName(from_query).select(
        "user_key", "topic", "event_type", F.col("ingest_date").alias("signal_date")
    )


def daily_signals(
    chat_rows: DataFrame, engagement_rows: DataFrame, weights: dict[str, float], chat_weight: float, daily_cap: float
) -> DataFrame:
    """user_key, topic, source, signal_date, weight (capped per day), signals (count)."""
    weight_of = F.create_map(*[x for k, v in weights.items() for x in (F.lit(k), F.lit(float(v)))])
    chat = chat_rows.select(
        "user_key", "topic", F.lit(CHAT).alias("source"), "signal_date", F.lit(float(chat_weight)).alias("w")
    )
    engagement = engagement_rows.select(
        "user_key",
        "topic",
        F.lit(ENGAGEMENT).alias("source"),
        "signal_date",
        F.element_at(weight_of, F.col("event_type")).alias("w"),
    )
    return (
        chat.unionByName(engagement)
        .groupBy("user_key", "topic", "source", "signal_date")
        .agg(F.least(F.sum("w"), F.lit(float(daily_cap))).alias("weight"), F.count("*").alias("signals"))
    )


def tag_frame(
    frame: DataFrame,
    id_col: str,
    text_col: str,
    lang_col: str | None,
    *,
    vocab: DataFrame,
    model,
    languages: list[str],
    negation_window: int,
) -> DataFrame:
    """The tagger (vocabulary and learned model) over any frame with an id and a text column
    (language optional)."""
    source = frame.select(
        id_col,
        F.col(text_col).alias("text"),
        (F.col(lang_col) if lang_col else F.lit(None).cast("string")).alias("language"),
    )
    return tag(source, vocab, languages, negation_window, id_col=id_col, model=model)
