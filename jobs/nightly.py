"""Stages after ingest for one logical date: privacy requests, signals, interests, segments, publish.

Each stage reads what earlier stages wrote and replaces exactly its own partitions, so any stage
can be re-run alone (Airflow retries) and a re-run of a date yields the same tables.
Publication: members are appended under a new publication id first; the catalog commit of the date
is the publication point. Consumers join members to the catalog's latest snapshot on
`publication_id`, so they see the previous complete publication until the catalog commit lands,
never a mix, also when a date is published again (see `publish`).
"""
from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jobs import tables as t
from jobs.config import Config
from jobs.errors import AudienceError
from jobs.gold import segments as seg
from jobs.io import delta_exists, replace_partition
from jobs.privacy_requests import apply_erasures, rebuild_chat_daily, requested_after, withdraw_chat_signals
from jobs.silver import signals as sig
from jobs.silver import tagger_model
from jobs.silver.tagger import vocabulary_frame
from jobs.silver.user_state import build_user_state, latest_per_user, region_frame


def _read(spark, table, empty_schema=None):
    path = table.path(spark.conf.get("audience.warehouse"))
    if delta_exists(spark, path):
        return spark.read.format("delta").load(path)
    return spark.createDataFrame([], empty_schema) if empty_schema else None


PROFILE_SCHEMA = "user_key string, birth_year int, country string, updated_at timestamp, ingest_date date"
PREFS_SCHEMA = "user_key string, ai_chat_ads boolean, personalized_ads boolean, updated_at timestamp, ingest_date date"


def stage_privacy(spark, cfg: Config, d: dt.date, run_id: str) -> dict:
    """The night's erasure requests applied everywhere, then user state as of D from what remains
    (built after the erasures, so an erased account never reaches tonight's state)."""
    spark.conf.set("audience.warehouse", str(cfg.warehouse))
    applied = apply_erasures(spark, cfg, d, run_id)
    state = build_user_state(_read(spark, t.USER_PROFILES, PROFILE_SCHEMA), _read(spark, t.AD_PREFERENCES, PREFS_SCHEMA),
                             region_frame(spark, cfg), cfg.default_region, d)
    replace_partition(state, t.USER_STATE, cfg.warehouse, {"state_date": d})
    withdrawn = withdraw_chat_signals(spark, cfg, d)
    return {"users": _read(spark, t.USER_STATE).where(F.col("state_date") == F.lit(d)).count(),
            "erasures": len(applied), "rows_removed": sum(a["rows_removed"] for a in applied),
            "chat_opt_outs": withdrawn}


def stage_signals(spark, cfg: Config, d: dt.date, run_id: str) -> dict:
    spark.conf.set("audience.warehouse", str(cfg.warehouse))
    vocab = vocabulary_frame(spark, cfg).cache()
    model = tagger_model.load(cfg.tagger_model)
    state = _read(spark, t.USER_STATE).where(F.col("state_date") == F.lit(d))
    # Objecting on D, or now (the latest preference of all): a re-run of a date before someone's
    # objection does not bring their chat signals back.
    objecting_now = (latest_per_user(_read(spark, t.AD_PREFERENCES, PREFS_SCHEMA), dt.date.max)
                     .where(~F.col("ai_chat_ads")).select("user_key"))
    opted_out = state.where(~F.col("ai_chat_ads")).select("user_key").union(objecting_now).distinct()
    day = F.col("ingest_date") == F.lit(d)
    turns = _read(spark, t.CHAT_MESSAGES).where(day & (F.col("role") == "user"))
    tags = sig.tag_frame(cfg, vocab, model, turns, "message_id", "text", "language")
    policies = sig.region_policy_frame(spark, cfg)
    chat_rows, suppressed = sig.chat_topics(
        turns.select("message_id", "conversation_id", "user_key", "country", "ingest_date"), tags,
        region_frame(spark, cfg), policies, cfg.default_region, opted_out)
    chat_rows = suppress_sensitive_conversations(spark, cfg, d, chat_rows, suppressed).cache()
    replace_partition(chat_rows, t.CHAT_TOPICS, cfg.warehouse, {"signal_date": d})
    events = _read(spark, t.ENGAGEMENT_EVENTS).where(day)
    query_tags = sig.tag_frame(cfg, vocab, model, events.where(F.col("query_text").isNotNull()),
                               "event_id", "query_text", None)
    eng_rows = sig.engagement_topics(events, query_tags, [x.topic_id for x in cfg.targetable_topics])
    daily = sig.daily_signals(chat_rows, eng_rows, cfg.engagement_weights, cfg.chat_turn_weight,
                              cfg.daily_cap_per_topic)
    replace_partition(daily, t.DAILY_SIGNALS, cfg.warehouse, {"signal_date": d})
    rows = _read(spark, t.DAILY_SIGNALS).where(F.col("signal_date") == F.lit(d)).count()
    chat_rows.unpersist()
    return {"daily_signals": rows, "tagger": model.version}


def suppress_sensitive_conversations(spark, cfg: Config, d: dt.date, chat_rows, flagged_tonight):
    """A conversation with a sensitive user turn on any night yields no signals from any turn.

    Tonight's flagged conversations replace the date's partition of silver.sensitive_conversations;
    tonight's rows lose every conversation flagged on any date (earlier or, in an out-of-order
    backfill, later), and other dates' chat topics lose the conversations flagged tonight, with
    their daily aggregates rebuilt. So the rule holds whatever order dates are run or re-run in.
    Returns tonight's chat topic rows."""
    flags = flagged_tonight.select("conversation_id", F.lit(d).alias("flagged_date"))
    replace_partition(flags, t.SENSITIVE_CONVERSATIONS, cfg.warehouse, {"flagged_date": d})
    every_flag = _read(spark, t.SENSITIVE_CONVERSATIONS).select("conversation_id").distinct()
    topics_path = t.CHAT_TOPICS.path(cfg.warehouse)
    if delta_exists(spark, topics_path):
        tonight = _read(spark, t.SENSITIVE_CONVERSATIONS).where(F.col("flagged_date") == F.lit(d))
        others = spark.read.format("delta").load(topics_path).where(F.col("signal_date") != F.lit(d))
        # a handful of dates at most (a conversation spans a few nights)
        dates = [r.signal_date for r in others.join(tonight, on="conversation_id", how="left_semi")
                 .select("signal_date").distinct().collect()]
        if dates:
            (DeltaTable.forPath(spark, topics_path).alias("t")
             .merge(tonight.alias("s"), f"t.conversation_id = s.conversation_id AND t.signal_date != '{d}'")
             .whenMatchedDelete().execute())
            for signal_date in sorted(dates):
                rebuild_chat_daily(spark, cfg, signal_date)
    return chat_rows.join(every_flag, on="conversation_id", how="left_anti")


def stage_interests(spark, cfg: Config, d: dt.date, run_id: str) -> dict:
    spark.conf.set("audience.warehouse", str(cfg.warehouse))
    max_lookback = max(p.lookback_days for p in cfg.regions.values())
    signals = (_read(spark, t.DAILY_SIGNALS)
               .where(F.col("signal_date").between(F.lit(d - dt.timedelta(days=max_lookback - 1)), F.lit(d)))
               # a re-run of a date before someone's erasure request leaves them out, as the erasure did
               .join(F.broadcast(requested_after(spark, cfg, d)), on="user_key", how="left_anti"))
    state = _read(spark, t.USER_STATE).where(F.col("state_date") == F.lit(d))
    scored = seg.interests(signals, state, sig.region_policy_frame(spark, cfg), d)
    replace_partition(scored, t.USER_INTERESTS, cfg.warehouse, {"snapshot_date": d})
    return {"user_interests": _read(spark, t.USER_INTERESTS).where(F.col("snapshot_date") == F.lit(d)).count()}


def segment_defs(spark, cfg: Config):
    return spark.createDataFrame([(x.topic_id, x.name, x.iab_audience_id) for x in cfg.targetable_topics],
                                 "segment_id string, segment_name string, iab_audience_id string")


def stage_segments(spark, cfg: Config, d: dt.date, run_id: str, published_at: dt.datetime,
                   regions: list[str] | None = None) -> dict:
    """Members and catalog rows of the given regions (all by default) into staging; nothing is
    visible to consumers until `publish`. Airflow maps this stage over regions."""
    spark.conf.set("audience.warehouse", str(cfg.warehouse))
    regions = regions or sorted(cfg.regions)
    unknown = sorted(set(regions) - set(cfg.regions))
    if unknown:
        raise AudienceError(f"unknown regions {unknown} (conf has: {', '.join(sorted(cfg.regions))})")
    policies = sig.region_policy_frame(spark, cfg).where(F.col("region").isin(regions))
    scored = _read(spark, t.USER_INTERESTS).where((F.col("snapshot_date") == F.lit(d)) & F.col("region").isin(regions))
    state = _read(spark, t.USER_STATE).where(F.col("state_date") == F.lit(d))
    candidates = seg.members(scored, state, policies, d).cache()
    catalog = seg.catalog(candidates, segment_defs(spark, cfg), policies, d, run_id, published_at,
                          tagger_model.version_at(cfg.tagger_model)).cache()
    where = {"snapshot_date": d, "region": regions}
    replace_partition(seg.published_members(candidates, catalog), t.SEGMENTS_STAGING, cfg.warehouse, where)
    _fault_point("segments")
    replace_partition(catalog, t.CATALOG_STAGING, cfg.warehouse, where)
    counts = dict(catalog.groupBy("status").agg(F.sum("member_count")).collect())
    candidates.unpersist()
    catalog.unpersist()
    return {"regions": len(regions), "published_members": int(counts.get(seg.PUBLISHED) or 0)}


def _fault_point(stage: str) -> None:
    """Chaos hook for recovery tests: with AUDIENCE_KILL_ONCE=<stage>:<marker file>, the process
    dies hard (as if OOM-killed) the first time it gets here, and runs normally once the marker exists."""
    spec = os.environ.get("AUDIENCE_KILL_ONCE", "")
    if not spec.startswith(f"{stage}:"):
        return
    marker = Path(spec.split(":", 1)[1])
    if not marker.exists():
        marker.write_text(f"killed {stage} after writing its staging rows\n")
        os._exit(137)


def require_staged(spark, cfg: Config, d: dt.date):
    """The date's staged catalog; an error naming the regions whose segments task has not run."""
    spark.conf.set("audience.warehouse", str(cfg.warehouse))
    catalog = _read(spark, t.CATALOG_STAGING)
    catalog = catalog.where(F.col("snapshot_date") == F.lit(d)) if catalog is not None else None
    staged = {r.region for r in catalog.select("region").distinct().collect()} if catalog is not None else set()
    missing = sorted(set(cfg.regions) - staged)
    if missing:
        raise AudienceError(f"cannot publish {d}: no segments staged for regions {', '.join(missing)}")
    return catalog


def publish(spark, cfg: Config, d: dt.date, run_id: str) -> list[dict]:
    """Publication of a date, first or repeated, atomic for readers who follow the catalog (the
    README's query joins members to the catalog on `publication_id`):
    1. the staged members are appended under a new publication id, which no catalog row names yet;
    2. the catalog commit of the date switches readers to that publication (the publication point);
    3. the date's member rows of any other publication are deleted.
    A run that dies between 1 and 2 leaves the previous publication visible and complete; the rows
    it appended are removed by step 3 of the next publication of the date."""
    publication = f"{run_id}/{uuid.uuid4().hex[:8]}"
    day = F.col("snapshot_date") == F.lit(d)
    catalog = require_staged(spark, cfg, d)
    members = _read(spark, t.SEGMENTS_STAGING).where(day).select("*", F.lit(publication).alias(seg.PUBLICATION))
    (members.write.format("delta").mode("append").option("mergeSchema", "true")
     .partitionBy(*t.AUDIENCE_SEGMENTS.partition_by).save(t.AUDIENCE_SEGMENTS.path(cfg.warehouse)))
    _fault_point("publish")
    replace_partition(catalog.select("*", F.lit(publication).alias(seg.PUBLICATION)), t.SEGMENT_CATALOG,
                      cfg.warehouse, {"snapshot_date": d})
    DeltaTable.forPath(spark, t.AUDIENCE_SEGMENTS.path(cfg.warehouse)).delete(
        day & (F.col(seg.PUBLICATION) != F.lit(publication)))
    return [r.asDict() for r in _read(spark, t.SEGMENT_CATALOG).where(day & (F.col("member_count") > 0))
            .orderBy("region", F.col("member_count").desc()).collect()]
