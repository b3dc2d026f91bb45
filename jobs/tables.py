"""Every Delta table of the product: its home under the warehouse root and its partitioning.

Tables live at `<warehouse>/<layer>/<table>` and are registered in the Spark catalog as
`<layer>.<table>`. Jobs read and write by path (no shared metastore needed); the catalog is a
convenience for analysts and `audience sql`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Table:
    layer: str
    name: str
    partition_by: tuple[str, ...]
    holds_user_data: bool = True

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"

    def path(self, warehouse) -> str:
        return str(Path(warehouse).absolute() / self.layer / self.name)


CHAT_MESSAGES = Table("bronze", "chat_messages", ("ingest_date",))
ENGAGEMENT_EVENTS = Table("bronze", "engagement_events", ("ingest_date",))
USER_PROFILES = Table("bronze", "user_profiles", ("ingest_date",))
AD_PREFERENCES = Table("bronze", "ad_preferences", ("ingest_date",))
ERASURE_REQUESTS = Table("bronze", "erasure_requests", ("ingest_date",))
QUARANTINE = Table("quarantine", "rejected_rows", ("dataset", "ingest_date"))
INGEST_RECONCILIATION = Table("quality", "ingest_reconciliation", ("ingest_date",), holds_user_data=False)
USER_STATE = Table("silver", "user_state", ("state_date",))
CHAT_TOPICS = Table("silver", "chat_topics", ("signal_date",))
DAILY_SIGNALS = Table("silver", "daily_signals", ("signal_date",))
USER_INTERESTS = Table("gold", "user_interests", ("snapshot_date",))
AUDIENCE_SEGMENTS = Table("gold", "audience_segments", ("snapshot_date", "region"))
SEGMENT_CATALOG = Table("gold", "segment_catalog", ("snapshot_date",), holds_user_data=False)
# Per-region results of the segments stage, waiting for the publish stage (one commit per table).
SEGMENTS_STAGING = Table("staging", "audience_segments", ("snapshot_date", "region"))
CATALOG_STAGING = Table("staging", "segment_catalog", ("snapshot_date", "region"), holds_user_data=False)
ERASURE_LOG = Table("privacy", "erasure_log", ("received_date",))
VALIDATION_RESULTS = Table("quality", "validation_results", ("logical_date",), holds_user_data=False)

ALL_TABLES = [
    CHAT_MESSAGES, ENGAGEMENT_EVENTS, USER_PROFILES, AD_PREFERENCES, ERASURE_REQUESTS,
    QUARANTINE, INGEST_RECONCILIATION, USER_STATE, CHAT_TOPICS, DAILY_SIGNALS, USER_INTERESTS,
    AUDIENCE_SEGMENTS, SEGMENT_CATALOG, SEGMENTS_STAGING, CATALOG_STAGING, ERASURE_LOG,
    VALIDATION_RESULTS,
]
BY_NAME = {t.qualified: t for t in ALL_TABLES}
