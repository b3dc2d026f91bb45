"""Every Delta table of the product: its home under the warehouse root, its partitioning and the
personal data it holds.

Tables live at `<warehouse>/<layer>/<table>` and are registered in the Spark catalog as
`<layer>.<table>`. Jobs read and write by path (no shared metastore needed); the catalog is a
convenience for analysts and `audience sql`.

The personal-data declaration is what erasure (jobs/privacy/requests.py) derives its deletes from,
and what the erasure audit looks for; `tests/test_tables.py` fails when a written table holds a
personal column its declaration does not name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Table:
    layer: str
    name: str
    partition_by: tuple[str, ...]
    # Columns holding personal data (None / empty: the table has no such column).
    user_key: str | None = None  # the pseudonymous user key
    message_id: str | None = None  # a chat message id
    conversation_id: str | None = None  # a chat conversation id
    free_text: tuple[str, ...] = ()  # redacted free text or raw records
    # SQL condition on the table (alias `t`) selecting its chat-derived rows ("true": every row);
    # None: the table holds no chat data. The `all_chats` scope and message ids apply to these rows.
    chat_rows: str | None = None
    # Per-user aggregates built from chat and engagement together (interests, segments): an
    # erasure of any scope removes the user's rows from every snapshot, since each may derive from
    # the erased data; later snapshots are rebuilt from cleaned data.
    derived: bool = False
    # Keeps the erasure request itself, the record that it happened (never erased).
    erasure_record: bool = False
    # Declared columns (Spark DDL), where code builds the table's rows itself or reads it before
    # anything wrote it (an empty frame of this schema).
    schema: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def personal_columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.user_key, self.message_id, self.conversation_id, *self.free_text) if c)

    def path(self, warehouse) -> str:
        return str(Path(warehouse).absolute() / self.layer / self.name)


ALL_ROWS = "true"
CHAT_MESSAGES = Table(
    "bronze",
    "chat_messages",
    ("ingest_date",),
    user_key="user_key",
    message_id="message_id",
    conversation_id="conversation_id",
    free_text=("text",),
    chat_rows=ALL_ROWS,
)
ENGAGEMENT_EVENTS = Table(
    "bronze", "engagement_events", ("ingest_date",), user_key="user_key", free_text=("query_text",)
)
USER_PROFILES = Table(
    "bronze",
    "user_profiles",
    ("ingest_date",),
    user_key="user_key",
    schema="user_key string, birth_year int, country string, updated_at timestamp, ingest_date date",
)
AD_PREFERENCES = Table(
    "bronze",
    "ad_preferences",
    ("ingest_date",),
    user_key="user_key",
    schema="user_key string, ai_chat_ads boolean, personalized_ads boolean, updated_at timestamp, ingest_date date",
)
ERASURE_REQUESTS = Table("bronze", "erasure_requests", ("ingest_date",), user_key="user_key", erasure_record=True)
# record_id is the message id on chat rows (the event or request id on others).
QUARANTINE = Table(
    "quarantine",
    "rejected_rows",
    ("dataset", "ingest_date"),
    user_key="user_key",
    message_id="record_id",
    conversation_id="conversation_id",
    free_text=("raw_redacted",),
    chat_rows="t.dataset = 'chat_messages'",
)
INGEST_RECONCILIATION = Table(
    "quality",
    "ingest_reconciliation",
    ("ingest_date",),
    schema="ingest_date date, dataset string, landing_rows long, accepted long, "
    "quarantined long, duplicates long, erased long, run_id string",
)
USER_STATE = Table("silver", "user_state", ("state_date",), user_key="user_key")
CHAT_TOPICS = Table(
    "silver",
    "chat_topics",
    ("signal_date",),
    user_key="user_key",
    message_id="message_id",
    conversation_id="conversation_id",
    chat_rows=ALL_ROWS,
)
# Conversations with a sensitive user turn on some night: their turns never yield signals. No user
# key and no category: only the fact that the conversation is off limits.
SENSITIVE_CONVERSATIONS = Table(
    "silver", "sensitive_conversations", ("flagged_date",), conversation_id="conversation_id", chat_rows=ALL_ROWS
)
DAILY_SIGNALS = Table("silver", "daily_signals", ("signal_date",), user_key="user_key", chat_rows="t.source = 'chat'")
USER_INTERESTS = Table("gold", "user_interests", ("snapshot_date",), user_key="user_key", derived=True)
AUDIENCE_SEGMENTS = Table("gold", "audience_segments", ("snapshot_date", "region"), user_key="user_key", derived=True)
SEGMENT_CATALOG = Table("gold", "segment_catalog", ("snapshot_date",))
# Per-region results of the segments stage, waiting for the publish stage (one commit per table).
SEGMENTS_STAGING = Table("staging", "audience_segments", ("snapshot_date", "region"), user_key="user_key", derived=True)
CATALOG_STAGING = Table("staging", "segment_catalog", ("snapshot_date", "region"))
ERASURE_LOG = Table(
    "privacy",
    "erasure_log",
    ("received_date",),
    user_key="user_key",
    erasure_record=True,
    schema="request_id string, user_key string, scope string, target_id string, received_date date, "
    "applied_run string, applied_at timestamp, rows_removed map<string,long>, purged_on date",
)
VALIDATION_RESULTS = Table(
    "quality",
    "validation_results",
    ("logical_date",),
    schema="run_id string, logical_date date, table_name string, validated_from string, "
    "expectation string, column_name string, severity string, success boolean, "
    "observed_value string, validated_at timestamp",
)

ALL_TABLES = [
    CHAT_MESSAGES,
    ENGAGEMENT_EVENTS,
    USER_PROFILES,
    AD_PREFERENCES,
    ERASURE_REQUESTS,
    QUARANTINE,
    INGEST_RECONCILIATION,
    USER_STATE,
    CHAT_TOPICS,
    SENSITIVE_CONVERSATIONS,
    DAILY_SIGNALS,
    USER_INTERESTS,
    AUDIENCE_SEGMENTS,
    SEGMENT_CATALOG,
    SEGMENTS_STAGING,
    CATALOG_STAGING,
    ERASURE_LOG,
    VALIDATION_RESULTS,
]
