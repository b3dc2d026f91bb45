"""The gold stages of one logical date: interests, segments (into staging, per region), publish.

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

from pyspark.sql import functions as F

from jobs import tables as t
from jobs.context import RunContext
from jobs.errors import AudienceError
from jobs.gold import segments as seg
from jobs.io import append, delta_at, predicate, sql_literal
from jobs.privacy.requests import requested_after
from jobs.silver import signals as sig
from jobs.silver import tagger_model


def interests(ctx: RunContext) -> dict:
    spark, cfg, d = ctx.spark, ctx.cfg, ctx.logical_date
    max_lookback = max(p.lookback_days for p in cfg.regions.values())
    signals = (
        ctx.read(t.DAILY_SIGNALS)
        .where(F.col("signal_date").between(F.lit(d - dt.timedelta(days=max_lookback - 1)), F.lit(d)))
        # a re-run of a date before someone's erasure request leaves them out, as the erasure did
        .join(F.broadcast(requested_after(spark, cfg, d)), on="user_key", how="left_anti")
    )
    state = ctx.read(t.USER_STATE).where(F.col("state_date") == F.lit(d))
    scored = seg.interests(signals, state, sig.region_policy_frame(spark, cfg.regions), d)
    ctx.replace(scored, t.USER_INTERESTS, {"snapshot_date": d})
    return {"user_interests": ctx.read(t.USER_INTERESTS).where(F.col("snapshot_date") == F.lit(d)).count()}


def segments(ctx: RunContext) -> dict:
    """Members and catalog rows of the context's regions (all by default) into staging; nothing is
    visible to consumers until `publish`. Airflow maps this stage over regions."""
    spark, cfg, d = ctx.spark, ctx.cfg, ctx.logical_date
    regions = list(ctx.regions or sorted(cfg.regions))
    unknown = sorted(set(regions) - set(cfg.regions))
    if unknown:
        raise AudienceError(f"unknown regions {unknown} (conf has: {', '.join(sorted(cfg.regions))})")
    policies = sig.region_policy_frame(spark, cfg.regions).where(F.col("region").isin(regions))
    scored = ctx.read(t.USER_INTERESTS).where((F.col("snapshot_date") == F.lit(d)) & F.col("region").isin(regions))
    state = ctx.read(t.USER_STATE).where(F.col("state_date") == F.lit(d))
    candidates = seg.members(scored, state, policies, d).cache()
    definitions = spark.createDataFrame(
        [(x.topic_id, x.name, x.iab_audience_id) for x in cfg.targetable_topics],
        "segment_id string, segment_name string, iab_audience_id string",
    )
    catalog = seg.catalog(
        candidates,
        definitions,
        policies,
        d,
        ctx.run_id,
        ctx.as_of.replace(microsecond=0),
        tagger_model.version_at(cfg.tagger_model),
    ).cache()
    where = {"snapshot_date": d, "region": regions}
    ctx.replace(seg.published_members(candidates, catalog), t.SEGMENTS_STAGING, where)
    _fault_point("segments")
    ctx.replace(catalog, t.CATALOG_STAGING, where)
    counts = dict(catalog.groupBy("status").agg(F.sum("member_count")).collect())
    candidates.unpersist()
    catalog.unpersist()
    return {"regions": len(regions), "published_members": int(counts.get(t.PUBLISHED) or 0)}


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


def require_staged(ctx: RunContext):
    """The date's staged catalog; an error naming the regions whose segments task has not run."""
    catalog = ctx.read(t.CATALOG_STAGING)
    catalog = catalog.where(F.col("snapshot_date") == F.lit(ctx.logical_date)) if catalog is not None else None
    staged = {r.region for r in catalog.select("region").distinct().collect()} if catalog is not None else set()
    missing = sorted(set(ctx.cfg.regions) - staged)
    if missing:
        raise AudienceError(f"cannot publish {ctx.logical_date}: no segments staged for regions {', '.join(missing)}")
    return catalog


def publish(ctx: RunContext) -> dict:
    """Publication of a date, first or repeated, atomic for readers who follow the catalog (the
    README's query joins members to the catalog on `publication_id`):
    1. the staged members are appended under a new publication id, which no catalog row names yet;
    2. the catalog commit of the date switches readers to that publication (the publication point);
    3. the date's member rows of any other publication are deleted.
    A run that dies between 1 and 2 leaves the previous publication visible and complete; the rows
    it appended are removed by step 3 of the next publication of the date.
    Returns the published members and the date's catalog rows with members."""
    spark, d = ctx.spark, ctx.logical_date
    publication = f"{ctx.run_id}/{uuid.uuid4().hex[:8]}"
    day = F.col("snapshot_date") == F.lit(d)
    catalog = require_staged(ctx)
    members = ctx.read(t.SEGMENTS_STAGING).where(day).select("*", F.lit(publication).alias(seg.PUBLICATION))
    append(members, t.AUDIENCE_SEGMENTS, ctx.cfg.warehouse, merge_schema=True)
    _fault_point("publish")
    ctx.replace(catalog.select("*", F.lit(publication).alias(seg.PUBLICATION)), t.SEGMENT_CATALOG, {"snapshot_date": d})
    spark.sql(
        f"DELETE FROM {delta_at(t.AUDIENCE_SEGMENTS.path(ctx.cfg.warehouse))} "
        f"WHERE {predicate({'snapshot_date': d})} AND {seg.PUBLICATION} != {sql_literal(publication)}"
    )
    rows = [
        r.asDict()
        for r in ctx.read(t.SEGMENT_CATALOG)
        .where(day & (F.col("member_count") > 0))
        .orderBy("region", F.col("member_count").desc())
        .collect()
    ]
    return {"published_members": sum(r["member_count"] for r in rows if r["status"] == t.PUBLISHED), "catalog": rows}
