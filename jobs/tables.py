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
    # A dated history that every night's erasures reach into: created with deletion vectors, so an
    # erasure marks its rows deleted instead of rewriting every file that holds one of tonight's
    # users (all of them, at a few hundred requests a night); maintenance PURGEs the vectors and
    # VACUUMs within erasure_physical_days. delta-rs (the analysts' reader without Spark) refuses
    # such tables: gold stays without.
    deletion_vectors: bool = False
    # The table's columns (Spark DDL): every write is checked against it (jobs/io.py), and a read
    # before anything wrote the table gets an empty frame of it.
    schema: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def personal_columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.user_key, self.message_id, self.conversation_id, *self.free_text) if c)

    def path(self, warehouse) -> str:
        return under(warehouse, self.layer, self.name)


def under(root, *parts: str) -> str:
    """`root/parts...` for a local folder (made absolute) or an object-store URI (`s3a://bucket/x`,
    kept as given: pathlib would fold its `//`)."""
    if "://" in str(root):
        return "/".join([str(root).rstrip("/"), *parts])
    return str(Path(root).absolute().joinpath(*parts))


# Values of silver.daily_signals.source (and gold scores' sources) and of gold.segment_catalog.status.
CHAT, ENGAGEMENT = "chat", "engagement"
PUBLISHED, SUPPRESSED_MIN, SUPPRESSED_POLICY = "published", "suppressed_min_audience", "suppressed_policy"
ALL_ROWS = "true"
CHAT_MESSAGES = Table(
    "bronze",
    "chat_messages",
    ("ingest_date",),
    user_key="user_key",
    deletion_vectors=True,
    message_id="message_id",
    conversation_id="conversation_id",
    free_text=("text",),
    chat_rows=ALL_ROWS,
    schema=(
        "message_id string, conversation_id string, user_key string, role string, text string, "
        "locale string, country string, surface string, sent_at timestamp, model string, language string, "
        "pii_redacted array<string>, source_file string, ingest_date date"
    ),
)
ENGAGEMENT_EVENTS = Table(
    "bronze",
    "engagement_events",
    ("ingest_date",),
    user_key="user_key",
    deletion_vectors=True,
    free_text=("query_text",),
    schema=(
        "event_id string, user_key string, event_type string, object_id string, object_topic string, "
        "query_text string, country string, surface string, occurred_at timestamp, source_file string, "
        "ingest_date date"
    ),
)
USER_PROFILES = Table(
    "bronze",
    "user_profiles",
    ("ingest_date",),
    user_key="user_key",
    schema=(
        "user_key string, birth_year int, country string, updated_at timestamp, source_file string, ingest_date date"
    ),
)
AD_PREFERENCES = Table(
    "bronze",
    "ad_preferences",
    ("ingest_date",),
    user_key="user_key",
    schema=(
        "user_key string, ai_chat_ads boolean, personalized_ads boolean, updated_at timestamp, "
        "source_file string, ingest_date date"
    ),
)
ERASURE_REQUESTS = Table(
    "bronze",
    "erasure_requests",
    ("ingest_date",),
    user_key="user_key",
    erasure_record=True,
    schema=(
        "request_id string, user_key string, scope string, target_id string, requested_at timestamp, "
        "source_file string, ingest_date date"
    ),
)
# record_id is the message id on chat rows (the event or request id on others).
QUARANTINE = Table(
    "quarantine",
    "rejected_rows",
    ("dataset", "ingest_date"),
    user_key="user_key",
    deletion_vectors=True,
    message_id="record_id",
    conversation_id="conversation_id",
    free_text=("raw_redacted",),
    chat_rows="t.dataset = 'chat_messages'",
    schema=(
        "dataset string, ingest_date date, reason string, source_file string, user_key string, "
        "record_id string, conversation_id string, raw_redacted string"
    ),
)
INGEST_RECONCILIATION = Table(
    "quality",
    "ingest_reconciliation",
    ("ingest_date",),
    schema=(
        "ingest_date date, dataset string, landing_rows bigint, accepted bigint, quarantined bigint, "
        "duplicates bigint, erased bigint, run_id string"
    ),
)
USER_STATE = Table(
    "silver",
    "user_state",
    ("state_date",),
    user_key="user_key",
    deletion_vectors=True,
    schema=(
        "user_key string, birth_year int, country string, region string, ai_chat_ads boolean, "
        "personalized_ads boolean, has_profile boolean, state_date date"
    ),
)
CHAT_TOPICS = Table(
    "silver",
    "chat_topics",
    ("signal_date",),
    user_key="user_key",
    deletion_vectors=True,
    message_id="message_id",
    conversation_id="conversation_id",
    chat_rows=ALL_ROWS,
    schema="conversation_id string, message_id string, user_key string, signal_date date, topic string",
)
# Conversations with a sensitive user turn on some night: their turns never yield signals. No user
# key and no category: only the fact that the conversation is off limits.
SENSITIVE_CONVERSATIONS = Table(
    "silver",
    "sensitive_conversations",
    ("flagged_date",),
    conversation_id="conversation_id",
    chat_rows=ALL_ROWS,
    schema="conversation_id string, flagged_date date",
)
DAILY_SIGNALS = Table(
    "silver",
    "daily_signals",
    ("signal_date",),
    user_key="user_key",
    deletion_vectors=True,
    chat_rows="t.source = 'chat'",
    schema="user_key string, topic string, source string, signal_date date, weight double, signals bigint",
)
USER_INTERESTS = Table(
    "gold",
    "user_interests",
    ("snapshot_date",),
    user_key="user_key",
    derived=True,
    schema=(
        "snapshot_date date, region string, user_key string, topic string, score double, chat_score double, "
        "engagement_score double, last_signal_date date, topic_rank int"
    ),
)
# Staged segments are what publish appends and commits, under the publication id it adds.
_MEMBERS = (
    "region string, segment_id string, snapshot_date date, user_key string, score double, "
    "chat_score double, engagement_score double, last_signal_date date"
)
_CATALOG = (
    "snapshot_date date, region string, segment_id string, segment_name string, iab_audience_id string, "
    "member_count bigint, status string, sources array<string>, lookback_days int, "
    "min_audience_size int, refresh string, run_id string, published_at timestamp, tagger_version string"
)
_PUBLICATION = "publication_id string"
AUDIENCE_SEGMENTS = Table(
    "gold",
    "audience_segments",
    ("snapshot_date", "region"),
    user_key="user_key",
    derived=True,
    schema=_MEMBERS + ", " + _PUBLICATION,
)
SEGMENT_CATALOG = Table(
    "gold",
    "segment_catalog",
    ("snapshot_date",),
    schema=_CATALOG + ", " + _PUBLICATION,
)
# Per-region results of the segments stage, waiting for the publish stage (one commit per table).
SEGMENTS_STAGING = Table(
    "staging",
    "audience_segments",
    ("snapshot_date", "region"),
    user_key="user_key",
    derived=True,
    schema=_MEMBERS,
)
CATALOG_STAGING = Table(
    "staging",
    "segment_catalog",
    ("snapshot_date", "region"),
    schema=_CATALOG,
)
ERASURE_LOG = Table(
    "privacy",
    "erasure_log",
    ("received_date",),
    user_key="user_key",
    erasure_record=True,
    schema=(
        "request_id string, user_key string, scope string, target_id string, received_date date, "
        "applied_run string, applied_at timestamp, rows_removed map<string,bigint>, purged_on date"
    ),
)
VALIDATION_RESULTS = Table(
    "quality",
    "validation_results",
    ("logical_date",),
    schema=(
        "run_id string, logical_date date, table_name string, validated_from string, expectation string, "
        "column_name string, severity string, success boolean, observed_value string, "
        "validated_at timestamp"
    ),
)
# How long each stage of each run took (`audience report`'s durations): one row per stage attempt
# (appended: a retry adds its own; the report keeps each stage's last).
STAGE_RUNS = Table(
    "quality",
    "stage_runs",
    ("logical_date",),
    schema="run_id string, logical_date date, stage string, started_at timestamp, seconds double, rows bigint",
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
    STAGE_RUNS,
]
# Logs to which every run (a re-run of a date too) adds rows of its own.
RUN_LOGS = (VALIDATION_RESULTS, STAGE_RUNS)
