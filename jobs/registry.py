"""The stage registry: the one list of the nightly's stages, in order. The command line, `audience
stage`, the Airflow DAG and the quality gates read it; nothing else lists stages.

Per stage: the function that runs it (`module:function`, imported when the stage runs, so that the
DAG reads this file without loading Spark), the tables it writes, the tables whose suites gate it,
what a failed gate rolls back, and its Airflow task's timeout. Adding a stage is an entry here
and the stage's own module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from jobs import tables as t


@dataclass(frozen=True)
class Stage:
    name: str
    function: str  # "module:function" taking a RunContext, returning a dict of counts
    writes: tuple[t.Table, ...]
    gate: tuple[t.Table, ...] = ()  # suites run on what the stage wrote (before it writes: gate_first)
    gate_first: bool = False  # publish validates the staged rows before they become visible
    # A failed gate restores these tables to their versions before the stage, so that rows that
    # failed validation are not left for analysts. Not privacy: restoring user_state would bring
    # back rows tonight's erasures deleted from earlier partitions.
    rollback: tuple[t.Table, ...] = ()
    rows: str = ""  # the result's key counted as the stage's rows
    publishes: bool = False  # its gold tables are the DAG's assets, updated when it succeeds
    timeout_minutes: int = 30
    doc: str = ""

    def run(self, ctx) -> dict:
        module, function = self.function.split(":")
        return getattr(importlib.import_module(module), function)(ctx)


_BRONZE = (
    t.CHAT_MESSAGES,
    t.ENGAGEMENT_EVENTS,
    t.USER_PROFILES,
    t.AD_PREFERENCES,
    t.ERASURE_REQUESTS,
    t.INGEST_RECONCILIATION,
)
STAGES = (
    Stage(
        "ingest",
        "jobs.bronze.stage:run",
        rows="landing_rows",
        timeout_minutes=60,
        writes=(*_BRONZE, t.QUARANTINE),
        gate=_BRONZE,
        rollback=_BRONZE,
        doc="Landing files of the date -> bronze tables and quarantine, PII redacted, ids pseudonymized.",
    ),
    Stage(
        "privacy",
        "jobs.privacy.stage:run",
        rows="users",
        writes=(t.USER_STATE, t.ERASURE_LOG),
        gate=(t.USER_STATE,),
        doc="The night's erasure requests applied everywhere, then user state as of the date.",
    ),
    Stage(
        "signals",
        "jobs.silver.stage:run",
        rows="daily_signals",
        timeout_minutes=60,
        writes=(t.CHAT_TOPICS, t.SENSITIVE_CONVERSATIONS, t.DAILY_SIGNALS),
        gate=(t.CHAT_TOPICS, t.DAILY_SIGNALS),
        rollback=(t.CHAT_TOPICS, t.DAILY_SIGNALS),
        doc="User chat turns and engagement tagged with topics; sensitive conversations suppressed.",
    ),
    Stage(
        "interests",
        "jobs.gold.stage:interests",
        rows="user_interests",
        writes=(t.USER_INTERESTS,),
        gate=(t.USER_INTERESTS,),
        rollback=(t.USER_INTERESTS,),
        doc="Per-user interest scores over each region's lookback, decayed by its half-life.",
    ),
    Stage(
        "segments",
        "jobs.gold.stage:segments",
        rows="published_members",
        writes=(t.SEGMENTS_STAGING, t.CATALOG_STAGING),
        doc="Members and catalog rows of the regions into staging; nothing visible yet.",
    ),
    Stage(
        "publish",
        "jobs.gold.stage:publish",
        rows="published_members",
        timeout_minutes=15,
        gate_first=True,
        publishes=True,
        writes=(t.AUDIENCE_SEGMENTS, t.SEGMENT_CATALOG),
        gate=(t.AUDIENCE_SEGMENTS, t.SEGMENT_CATALOG),
        doc="Staged members, then the catalog commit: the publication point.",
    ),
)
NAMES = tuple(s.name for s in STAGES)
BY_NAME = {s.name: s for s in STAGES}
# Every table a suite validates, in stage order.
VALIDATED = tuple(table for s in STAGES for table in s.gate)
