"""The landing contract (SPEC section 3) as data: fields, kinds, enums and keys per dataset."""

from __future__ import annotations

from dataclasses import dataclass

from jobs import tables
from jobs.config import ENGAGEMENT_EVENT_TYPES

SURFACES = ("messenger", "whatsapp", "instagram", "facebook")
ROLES = ("user", "assistant")
ERASURE_SCOPES = ("message", "conversation", "all_chats", "account")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # str | text | enum | country | timestamp | year | bool | topic
    required: bool = True
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    name: str
    file_format: str  # jsonl | parquet
    delivered_daily: bool  # a missing folder means upstream has not delivered
    table: tables.Table
    fields: tuple[Field, ...]
    key: tuple[str, ...]  # dedup key, after user_id -> user_key
    timestamp: str
    record_id: str | None = None
    conversation_id: str | None = None
    # A person's legal request (erasure, ad preferences): applied whatever its timestamp; only a
    # record that cannot be parsed or lacks what identifies the person is quarantined.
    legal_request: bool = False

    @property
    def glob(self) -> str:
        return "*.parquet" if self.file_format == "parquet" else "*.{jsonl,jsonl.gz}"

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


CHAT_MESSAGES = Dataset(
    "chat_messages",
    "jsonl",
    True,
    tables.CHAT_MESSAGES,
    (
        Field("message_id", "str"),
        Field("conversation_id", "str"),
        Field("user_id", "str"),
        Field("role", "enum", values=ROLES),
        Field("text", "text"),
        Field("locale", "str", required=False),
        Field("country", "country"),
        Field("surface", "enum", values=SURFACES),
        Field("sent_at", "timestamp"),
        Field("model", "str", required=False),
    ),
    key=("message_id",),
    timestamp="sent_at",
    record_id="message_id",
    conversation_id="conversation_id",
)
ENGAGEMENT_EVENTS = Dataset(
    "engagement_events",
    "parquet",
    True,
    tables.ENGAGEMENT_EVENTS,
    (
        Field("event_id", "str"),
        Field("user_id", "str"),
        Field("event_type", "enum", values=ENGAGEMENT_EVENT_TYPES),
        Field("object_id", "str", required=False),
        Field("object_topic", "topic", required=False),
        Field("query_text", "text", required=False),
        Field("country", "country"),
        Field("surface", "enum", values=SURFACES),
        Field("occurred_at", "timestamp"),
    ),
    key=("event_id",),
    timestamp="occurred_at",
    record_id="event_id",
)
USER_PROFILES = Dataset(
    "user_profiles",
    "jsonl",
    False,
    tables.USER_PROFILES,
    (
        Field("user_id", "str"),
        Field("birth_year", "year", required=False),
        Field("country", "country"),
        Field("updated_at", "timestamp"),
    ),
    key=("user_key", "updated_at"),
    timestamp="updated_at",
)
AD_PREFERENCES = Dataset(
    "ad_preferences",
    "jsonl",
    False,
    tables.AD_PREFERENCES,
    (
        Field("user_id", "str"),
        Field("ai_chat_ads", "bool"),
        Field("personalized_ads", "bool", required=False),
        Field("updated_at", "timestamp"),
    ),
    key=("user_key", "updated_at"),
    timestamp="updated_at",
    legal_request=True,
)
ERASURE_REQUESTS = Dataset(
    "erasure_requests",
    "jsonl",
    False,
    tables.ERASURE_REQUESTS,
    (
        Field("request_id", "str"),
        Field("user_id", "str"),
        Field("scope", "enum", values=ERASURE_SCOPES),
        Field("target_id", "str", required=False),
        Field("requested_at", "timestamp"),
    ),
    key=("request_id",),
    timestamp="requested_at",
    record_id="request_id",
    legal_request=True,
)

# Erasure requests first: the night's requests are tombstones for the other datasets.
DATASETS = (ERASURE_REQUESTS, CHAT_MESSAGES, ENGAGEMENT_EVENTS, USER_PROFILES, AD_PREFERENCES)
