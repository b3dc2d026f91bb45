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
    # What the table holds, for analysts: the Delta table's description (`DESCRIBE TABLE EXTENDED`'s
    # Comment), set when the table is created; its columns' comments come from COLUMN_DOCS.
    doc: str = ""

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
    doc=(
        "Chat turns of the AI assistant as landed each day, keyed by user_key, PII redacted; text removed "
        "after chat_text_retention_days."
    ),
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
    doc=(
        "Engagement events (likes, shares, follows, searches, clicks, views) as landed each day, keyed by "
        "user_key; sensitive object topics removed."
    ),
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
    doc="Profile changes as landed each day (birth year, country); silver.user_state keeps the latest per user.",
    user_key="user_key",
    schema=(
        "user_key string, birth_year int, country string, updated_at timestamp, source_file string, ingest_date date"
    ),
)
AD_PREFERENCES = Table(
    "bronze",
    "ad_preferences",
    ("ingest_date",),
    doc="Ad preference changes as landed each day; silver.user_state keeps the latest per user.",
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
    doc=(
        "Erasure requests as landed each day; applied by the next nightly run (privacy.erasure_log says what "
        "each removed)."
    ),
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
    doc=(
        "Landing rows refused by ingest, with the reason; no raw user id, text redacted; kept "
        "quarantine_retention_days."
    ),
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
    doc="Per ingest date and dataset: landing rows = accepted + quarantined + duplicates + erased.",
    schema=(
        "ingest_date date, dataset string, landing_rows bigint, accepted bigint, quarantined bigint, "
        "duplicates bigint, erased bigint, run_id string"
    ),
)
USER_STATE = Table(
    "silver",
    "user_state",
    ("state_date",),
    doc=(
        "Each user's current profile and ad preferences as of state_date (latest record wins), with the "
        "region of the country."
    ),
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
    doc="Taxonomy topics the tagger found in users' chat turns, per message; sensitive turns never appear here.",
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
    doc=(
        "Conversations with a sensitive user turn (GDPR Art. 9): their turns never yield signals. No user "
        "key, no category."
    ),
    conversation_id="conversation_id",
    chat_rows=ALL_ROWS,
    schema="conversation_id string, flagged_date date",
)
DAILY_SIGNALS = Table(
    "silver",
    "daily_signals",
    ("signal_date",),
    doc="Per user, topic, source (chat or engagement) and day: the day's weight and number of signals.",
    user_key="user_key",
    deletion_vectors=True,
    chat_rows="t.source = 'chat'",
    schema="user_key string, topic string, source string, signal_date date, weight double, signals bigint",
)
USER_INTERESTS = Table(
    "gold",
    "user_interests",
    ("snapshot_date",),
    doc=(
        "Per snapshot date and user: interest scores by topic over the lookback window (decayed by age), chat"
        " and engagement parts kept."
    ),
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
    doc=(
        "Published segment members per snapshot date and region; join gold.segment_catalog on publication_id "
        "for the current publication."
    ),
    user_key="user_key",
    derived=True,
    schema=_MEMBERS + ", " + _PUBLICATION,
)
SEGMENT_CATALOG = Table(
    "gold",
    "segment_catalog",
    ("snapshot_date",),
    doc=(
        "One row per snapshot date, region and segment: size, status (published or suppressed, and why) and "
        "its data label."
    ),
    schema=_CATALOG + ", " + _PUBLICATION,
)
# Per-region results of the segments stage, waiting for the publish stage (one commit per table).
SEGMENTS_STAGING = Table(
    "staging",
    "audience_segments",
    ("snapshot_date", "region"),
    doc="Segment members per region computed by the segments stage, waiting for the publish stage.",
    user_key="user_key",
    derived=True,
    schema=_MEMBERS,
)
CATALOG_STAGING = Table(
    "staging",
    "segment_catalog",
    ("snapshot_date", "region"),
    doc="Segment catalog rows per region computed by the segments stage, waiting for the publish stage.",
    schema=_CATALOG,
)
ERASURE_LOG = Table(
    "privacy",
    "erasure_log",
    ("received_date",),
    doc=(
        "Every erasure request applied: when, by which run, the rows removed per table, and when old file "
        "versions were purged."
    ),
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
    doc="Every expectation of every quality gate of every run: success, severity and observed value.",
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
    doc="How long each stage of each run took, and the rows it produced.",
    schema="run_id string, logical_date date, stage string, started_at timestamp, seconds double, rows bigint",
)

# What each column means, in every table that has it (a name means one thing across the product):
# each Delta table carries these as column comments from its creation (jobs/io.py), visible in
# `DESCRIBE`, the JDBC endpoint and delta-rs schemas; maintenance brings older tables up to date.
COLUMN_DOCS = {
    # keys and provenance
    "user_key": "pseudonymous user key: lowercase hex HMAC-SHA256 of the platform user id (never the id itself)",
    "message_id": "chat message id",
    "conversation_id": "chat conversation id",
    "event_id": "engagement event id",
    "request_id": "erasure request id",
    "record_id": "id of the refused row: message id for chat rows, event or request id for others",
    "source_file": "landing file the row came from",
    "dataset": "landing dataset: chat_messages, engagement_events, user_profiles, ad_preferences, erasure_requests",
    "ingest_date": "logical date of the landing folder the row was ingested from",
    "run_id": "run that wrote the row: <date>-<id> from the command line, or the Airflow run id",
    # chat and engagement as landed
    "role": "author of the turn: user or assistant (only user turns yield signals)",
    "text": "turn text with emails, phone numbers, cards and IBANs replaced by placeholders; null after retention",
    "locale": "BCP-47 locale of the turn, e.g. fr-FR (may be null)",
    "language": "language subtag of the locale, lowercase (may be null)",
    "country": "ISO 3166-1 alpha-2 country of the user",
    "surface": "app the assistant ran in: messenger, whatsapp, instagram, facebook",
    "sent_at": "when the turn was sent (UTC)",
    "model": "assistant model name (may be null)",
    "pii_redacted": "kinds of PII replaced in the text (email, phone, card, iban)",
    "event_type": "like, comment, share, follow, search, click or view",
    "object_id": "object engaged with (null for searches)",
    "object_topic": "taxonomy topic of the object; null when unknown or sensitive",
    "query_text": "search text, PII redacted (searches only); null after retention",
    "occurred_at": "when the event happened (UTC)",
    # profiles and preferences
    "birth_year": "year of birth from the profile (null: unknown age, never a segment member)",
    "updated_at": "when the user changed this record (UTC); the latest wins",
    "ai_chat_ads": "false: the user objects to chat-derived ads",
    "personalized_ads": "false: no interest-based ads at all for the user",
    "has_profile": "the user has a profile (without one the age is unknown: never a member)",
    "region": "ad region of the user's country (conf/regions.yaml)",
    "state_date": "date the state holds for (latest records up to the end of that day)",
    # erasure
    "scope": "what the request erases: message, conversation, all_chats or account",
    "target_id": "message or conversation id for those scopes; null for all_chats and account",
    "requested_at": "when the user asked (UTC)",
    "received_date": "ingest date of the request",
    "applied_run": "run that applied the request",
    "applied_at": "when the request was applied (UTC)",
    "rows_removed": "rows removed per table (<layer>.<table>)",
    "purged_on": "date maintenance VACUUMed the old file versions: time travel cannot bring the data back after it",
    # quarantine and reconciliation
    "reason": "why ingest refused the row",
    "raw_redacted": "the refused record as JSON, without the raw user id and with PII redacted",
    "landing_rows": "rows in the day's landing files",
    "accepted": "rows written to bronze",
    "quarantined": "rows written to quarantine.rejected_rows",
    "duplicates": "rows already ingested (same id), skipped",
    "erased": "rows of an erased user, conversation or message, dropped",
    # signals and scores
    "signal_date": "day the signals happened",
    "flagged_date": "day the conversation had a sensitive turn",
    "topic": "taxonomy topic id (never a sensitive category)",
    "source": "where the signal came from: chat or engagement",
    "weight": "the day's weight, capped: chat turns, or events weighted by type (conf/)",
    "signals": "number of turns or events that day",
    "snapshot_date": "logical date the scores or segments are for",
    "score": "interest score: chat_score + engagement_score",
    "chat_score": "part of the score from chat turns over the lookback window, decayed by age",
    "engagement_score": "part of the score from engagement events over the lookback window, decayed by age",
    "last_signal_date": "latest day with a signal for the user and topic in the lookback window",
    "topic_rank": "rank of the topic among the user's topics by score (1 = highest)",
    # segments
    "segment_id": "segment id (the taxonomy topic id)",
    "segment_name": "segment name from the taxonomy",
    "iab_audience_id": "IAB Audience Taxonomy id of the segment",
    "member_count": "users who qualified; members are published only when status is published",
    "status": "published, suppressed_min_audience (below min_audience_size) or suppressed_policy (region policy)",
    "sources": "sources the members' scores came from: chat, engagement",
    "lookback_days": "days of signals the scores cover",
    "min_audience_size": "smallest audience the region publishes",
    "refresh": "how often the segment is rebuilt (daily)",
    "published_at": "when the snapshot was published (UTC)",
    "tagger_version": (
        "version of the learned chat tagger (topics and sensitive categories) the segments were built with"
    ),
    "publication_id": "publication the rows belong to: members count when their catalog row names the same id",
    # quality
    "logical_date": "logical date of the run",
    "table_name": "table validated (<layer>.<table>)",
    "validated_from": "table, or staging (rows about to be published)",
    "expectation": "the expectation checked (Great Expectations)",
    "column_name": "column checked (null for table-level expectations)",
    "severity": "critical (fails the run) or warning",
    "success": "whether the expectation held",
    "observed_value": "what Great Expectations observed, as text",
    "validated_at": "when the validation ran (UTC)",
    "stage": "stage of the run (with its regions when a run covered only some)",
    "started_at": "when the stage started (UTC)",
    "seconds": "wall seconds the stage took",
    "rows": "rows the stage produced",
}

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
