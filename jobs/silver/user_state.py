"""silver.user_state: each user's profile and ad preferences as of a logical date.

Built from the bronze change logs up to D (latest record per user wins), so a backfill of an old
date sees the state of that date, not today's.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F


def latest_per_user(changes: DataFrame, as_of_date: dt.date) -> DataFrame:
    latest = Window.partitionBy("user_key").orderBy(F.col("updated_at").desc(), F.col("ingest_date").desc())
    return (
        changes.where(F.col("ingest_date") <= F.lit(as_of_date))
        .select("*", F.row_number().over(latest).alias("_n"))
        .where("_n = 1")
        .drop("_n")
    )


def region_frame(spark: SparkSession, country_region: dict[str, str]) -> DataFrame:
    """Country -> region, for joins (countries of no region are left to the caller's default)."""
    return spark.createDataFrame(sorted(country_region.items()), "country string, region string")


def build_user_state(
    profiles: DataFrame, prefs: DataFrame, regions: DataFrame, default_region: str, as_of_date: dt.date
) -> DataFrame:
    """One row per user seen in either log; users without a profile have unknown age and region."""
    profile = latest_per_user(profiles, as_of_date).select("user_key", "birth_year", "country")
    pref = latest_per_user(prefs, as_of_date).select("user_key", "ai_chat_ads", "personalized_ads")
    return (
        profile.join(pref, on="user_key", how="full")
        .join(F.broadcast(regions), on="country", how="left")
        .select(
            "user_key",
            "birth_year",
            "country",
            F.when(F.col("country").isNull(), None)
            .otherwise(F.coalesce("region", F.lit(default_region)))
            .alias("region"),
            F.coalesce("ai_chat_ads", F.lit(True)).alias("ai_chat_ads"),
            F.col("personalized_ads"),
            F.col("country").isNotNull().alias("has_profile"),
            F.lit(as_of_date).alias("state_date"),
        )
    )
