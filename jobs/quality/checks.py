"""Cross-table rules and privacy invariants a single-table expectation cannot see, as `check_*`
columns of the frame under validation (the suites assert them). `validation_frame` reads the date's
tables and hands them to the pure functions below, so tests can compute the checks from planted
inputs."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import tables as t
from jobs.config import Config
from jobs.gold.segments import PUBLICATION, youngest_age


def _partition(spark, cfg: Config, table: t.Table, d: dt.date) -> DataFrame:
    """The date's rows (every validated table is partitioned by its date first)."""
    return spark.read.format("delta").load(table.path(cfg.warehouse)).where(F.col(table.partition_by[0]) == F.lit(d))


def validation_frame(spark, cfg: Config, table: t.Table, d: dt.date, staged: bool = False) -> DataFrame:
    """The date's rows of `table` plus the gate's check columns. With staged=True the gold tables
    are read from staging: what publish is about to make visible. Only reads: the check columns
    are computed by the pure functions below from the frames read here."""
    if table == t.INGEST_RECONCILIATION:
        return reconciliation_checks(_partition(spark, cfg, table, d))
    if table == t.USER_INTERESTS:
        return interest_checks(_partition(spark, cfg, table, d), chat_regions(cfg, d))
    if table in (t.AUDIENCE_SEGMENTS, t.SEGMENT_CATALOG):
        members = _partition(spark, cfg, t.SEGMENTS_STAGING if staged else t.AUDIENCE_SEGMENTS, d)
        catalog = _partition(spark, cfg, t.CATALOG_STAGING if staged else t.SEGMENT_CATALOG, d)
        state = _partition(spark, cfg, t.USER_STATE, d)
        return segment_checks(table, members, catalog, state, min_ages(cfg), d, staged=staged)
    return _partition(spark, cfg, table, d)


def chat_regions(cfg: Config, d: dt.date) -> list[str]:
    """Regions whose chat rollout has begun on or before `d`."""
    return [name for name, p in cfg.regions.items() if p.chat_signals_from and p.chat_signals_from <= d]


def min_ages(cfg: Config) -> dict[str, int]:
    """Each region's minimum age for targeting."""
    return {name: p.min_age for name, p in cfg.regions.items()}


def reconciliation_checks(frame: DataFrame) -> DataFrame:
    """Reconciliation rows plus: every landing row accounted for once, and the quarantined share."""
    return frame.select(
        "*",
        (
            F.col("landing_rows") == F.col("accepted") + F.col("quarantined") + F.col("duplicates") + F.col("erased")
        ).alias("check_balanced"),
        F.when(F.col("landing_rows") > 0, F.col("quarantined") / F.col("landing_rows"))
        .otherwise(0.0)
        .alias("check_quarantine_share"),
    )


def interest_checks(frame: DataFrame, chat_regions: list[str]) -> DataFrame:
    """Interest rows plus: a chat score only in a region whose chat rollout has begun."""
    return frame.select(
        "*", ((F.col("chat_score") == 0) | F.col("region").isin(chat_regions)).alias("check_chat_allowed")
    )


def segment_checks(
    table: t.Table,
    members: DataFrame,
    catalog: DataFrame,
    state: DataFrame,
    min_ages: dict[str, int],
    d: dt.date,
    staged: bool = False,
) -> DataFrame:
    """Members and catalog (of the date) checked against each other, and members against user state
    and policy: the catalog rows plus their checks for t.SEGMENT_CATALOG, else the member rows plus
    theirs. staged=True: frames read from staging, which have no publication id yet."""
    if staged:  # not published yet: no publication id
        members, catalog = (
            frame.select("*", F.lit(None).cast("string").alias(PUBLICATION)) for frame in (members, catalog)
        )
    else:  # the published members: those of the publication the catalog names
        members = members.join(catalog.select(PUBLICATION).distinct(), PUBLICATION, "left_semi")
    counted = members.groupBy("region", "segment_id").agg(F.count("*").alias("check_member_rows"))
    if table == t.SEGMENT_CATALOG:
        rows = F.coalesce("check_member_rows", F.lit(0))
        return catalog.join(F.broadcast(counted), ["region", "segment_id"], "left").select(
            *catalog.columns,
            F.when(F.col("status") == t.PUBLISHED, rows == F.col("member_count"))
            .otherwise(rows == 0)
            .alias("check_member_rows_match"),
            ((F.col("status") != t.PUBLISHED) | (F.col("member_count") >= F.col("min_audience_size"))).alias(
                "check_min_audience_met"
            ),
        )
    min_age = members.sparkSession.createDataFrame(list(min_ages.items()), "region string, check_min_age int")
    state = state.select("user_key", "birth_year", "personalized_ads")
    return (
        members.join(
            F.broadcast(
                catalog.select(
                    "region",
                    "segment_id",
                    F.col("status").alias("check_catalog_status"),
                    F.col("member_count").alias("check_catalog_count"),
                )
            ),
            ["region", "segment_id"],
            "left",
        )
        .join(F.broadcast(counted), ["region", "segment_id"], "left")
        .join(F.broadcast(min_age), "region", "left")
        .join(state, "user_key", "left")
        .select(
            *members.columns,
            "check_catalog_status",
            F.coalesce(F.col("check_catalog_count") == F.col("check_member_rows"), F.lit(False)).alias(
                "check_member_count_matches"
            ),
            F.coalesce(youngest_age(d) >= F.col("check_min_age"), F.lit(False)).alias("check_min_age_met"),
            F.coalesce(F.col("personalized_ads"), F.lit(True)).alias("check_ads_allowed"),
        )
    )
