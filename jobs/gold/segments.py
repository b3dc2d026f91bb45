"""silver -> gold: decayed interests per user and topic, then per-region audience segments and the
segment catalog (a data label in the spirit of the IAB Tech Lab Data Transparency Standard)."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.tables import CHAT, ENGAGEMENT, PUBLISHED, SUPPRESSED_MIN, SUPPRESSED_POLICY

SCORE_DIGITS = 9
# Where a member's score came from, as reports show it.
MEMBER_SOURCES = ("chat only", "engagement only", "both")


def member_source() -> Column:
    """A member row's source (MEMBER_SOURCES): which of its chat and engagement scores are above 0."""
    chat, eng = F.col("chat_score") > 0, F.col("engagement_score") > 0
    return F.when(chat & eng, MEMBER_SOURCES[2]).when(chat, MEMBER_SOURCES[0]).when(eng, MEMBER_SOURCES[1])


# Names the publication a member row and a catalog row belong to (jobs/gold/stage.py: publish).
PUBLICATION = "publication_id"


def current_members(members: DataFrame, catalog: DataFrame) -> DataFrame:
    """The member rows of the publication each catalog row names, as readers count them: a run that
    died before its catalog commit leaves rows of another publication until the date is published again."""
    keys = ["snapshot_date", "region", "segment_id", PUBLICATION]
    return members.join(F.broadcast(catalog.select(keys)), keys, "left_semi")


def interests(signals: DataFrame, state: DataFrame, policies: DataFrame, snapshot: dt.date) -> DataFrame:
    """Score on D = sum over the region's lookback of daily weights * 0.5^(age/half_life), split into
    chat_score and engagement_score. Chat counts only from the region's rollout date and, where the
    region honours it, only for users who have not objected to chat-derived ads (past signals too)."""
    d = F.lit(snapshot)
    chat_allowed = (
        F.col("chat_signals_from").isNotNull()
        & (d >= F.col("chat_signals_from"))
        & (~F.col("honor_chat_opt_out") | F.col("ai_chat_ads"))
    )
    decayed = F.col("weight") * F.pow(F.lit(0.5), F.datediff(d, F.col("signal_date")) / F.col("half_life_days"))
    usable = F.when(F.col("source") == ENGAGEMENT, True).otherwise(chat_allowed)
    scored = (
        signals.join(
            state.where(F.col("region").isNotNull()).select("user_key", "region", "ai_chat_ads"),
            on="user_key",
            how="inner",
        )
        .join(F.broadcast(policies), on="region", how="inner")
        .where((F.col("signal_date") <= d) & (F.datediff(d, F.col("signal_date")) < F.col("lookback_days")) & usable)
        .groupBy("user_key", "region", "topic")
        # rounded: a float sum depends on the order rows meet in, i.e. on the partitioning; the
        # same night on another cluster size or profile must give the same scores and ranks
        .agg(
            F.round(F.sum(F.when(F.col("source") == CHAT, decayed).otherwise(0.0)), SCORE_DIGITS).alias("chat_score"),
            F.round(F.sum(F.when(F.col("source") == ENGAGEMENT, decayed).otherwise(0.0)), SCORE_DIGITS).alias(
                "engagement_score"
            ),
            F.max("signal_date").alias("last_signal_date"),
        )
    )
    best_first = Window.partitionBy("user_key").orderBy(F.col("score").desc(), F.col("topic"))
    return (
        scored.select("*", (F.col("chat_score") + F.col("engagement_score")).alias("score"))
        .select("*", F.row_number().over(best_first).alias("topic_rank"))
        .select(
            F.lit(snapshot).alias("snapshot_date"),
            "region",
            "user_key",
            "topic",
            "score",
            "chat_score",
            "engagement_score",
            "last_signal_date",
            "topic_rank",
        )
    )


def youngest_age(on: dt.date) -> Column:
    """The youngest age a user born in `birth_year` can have on the date (unknown: null, a minor)."""
    return F.lit(on.year) - F.col("birth_year") - 1


def members(user_interests: DataFrame, state: DataFrame, policies: DataFrame, snapshot: dt.date) -> DataFrame:
    """Members: score >= min_score, topic among the user's top_k, old enough (unknown age is a minor),
    not opted out of personalized ads. With only a birth year, the youngest possible age is used."""
    eligible = state.where(F.col("birth_year").isNotNull() & (F.coalesce("personalized_ads", F.lit(True))))
    return (
        user_interests.join(
            F.broadcast(policies.select("region", "min_score", "top_k", "min_age")), on="region", how="inner"
        )
        .join(eligible.select("user_key", "birth_year"), on="user_key", how="inner")
        .where(
            (F.col("score") >= F.col("min_score"))
            & (F.col("topic_rank") <= F.col("top_k"))
            & (youngest_age(snapshot) >= F.col("min_age"))
        )
        .select(
            "snapshot_date",
            "region",
            F.col("topic").alias("segment_id"),
            "user_key",
            "score",
            "chat_score",
            "engagement_score",
            "last_signal_date",
        )
    )


def catalog(
    candidates: DataFrame,
    segment_defs: DataFrame,
    policies: DataFrame,
    snapshot: dt.date,
    run_id: str,
    published_at: dt.datetime,
    tagger_version: str,
) -> DataFrame:
    """One row per region and targetable topic: member count, status and data-label fields
    (tagger_version: the learned detector in force when the segments were built)."""
    counts = candidates.groupBy("region", "segment_id").agg(
        F.count("*").alias("member_count"),
        F.max((F.col("chat_score") > 0).cast("int")).alias("_chat"),
        F.max((F.col("engagement_score") > 0).cast("int")).alias("_eng"),
    )
    sources = F.filter(
        F.array(F.when(F.col("_chat") == 1, F.lit(CHAT)), F.when(F.col("_eng") == 1, F.lit(ENGAGEMENT))),
        lambda s: s.isNotNull(),
    )
    grid = F.broadcast(policies.select("region", "min_audience_size", "lookback_days", "blocked_segments")).crossJoin(
        F.broadcast(segment_defs)
    )
    return grid.join(counts, on=["region", "segment_id"], how="left").select(
        F.lit(snapshot).alias("snapshot_date"),
        "region",
        "segment_id",
        "segment_name",
        "iab_audience_id",
        F.coalesce("member_count", F.lit(0)).cast("long").alias("member_count"),
        F.when(F.array_contains("blocked_segments", F.col("segment_id")), SUPPRESSED_POLICY)
        .when(F.coalesce("member_count", F.lit(0)) >= F.col("min_audience_size"), PUBLISHED)
        .otherwise(SUPPRESSED_MIN)
        .alias("status"),
        F.coalesce(sources, F.array().cast("array<string>")).alias("sources"),
        "lookback_days",
        "min_audience_size",
        F.lit("daily").alias("refresh"),
        F.lit(run_id).alias("run_id"),
        F.lit(published_at).alias("published_at"),
        F.lit(tagger_version).alias("tagger_version"),
    )


def published_members(candidates: DataFrame, catalog_rows: DataFrame) -> DataFrame:
    published = catalog_rows.where(F.col("status") == PUBLISHED).select("region", "segment_id")
    return candidates.join(published, on=["region", "segment_id"], how="left_semi")
