"""Contract checks of bronze ingest on tiny inline rows: one planted case per quarantine reason."""

import dataclasses
import datetime as dt
import hashlib
import hmac
import json

import pytest

from jobs.bronze import contract
from jobs.bronze.ingest import IngestParams, classify, mark_duplicates, parse, to_bronze, to_quarantine
from jobs.config import load_config

KEY = b"test-key"
DAY = dt.date(2025, 12, 16)
GOOD = {
    "message_id": "m1",
    "conversation_id": "c1",
    "user_id": "alice",
    "role": "user",
    "text": "tips for a trip to Lisbon?",
    "locale": "pt-PT",
    "country": "PT",
    "surface": "whatsapp",
    "sent_at": "2025-12-16T10:00:00Z",
}


@pytest.fixture(scope="module")
def params():
    cfg = load_config(profile="test")
    return IngestParams(
        logical_date=DAY,
        as_of=dt.datetime(2025, 12, 18, 2, 0, tzinfo=dt.timezone.utc),
        tolerance_hours=6,
        iso_countries=cfg.iso_countries,
        topic_ids=frozenset(cfg.topics),
        key=KEY,
        sensitive_topic_ids=frozenset(x for x, topic in cfg.topics.items() if topic.sensitive),
    )


def _raw(spark, lines, source="part-0.jsonl"):
    arrived = dt.datetime(2025, 12, 17, 1, 0)
    return spark.createDataFrame(
        [(line, source, arrived) for line in lines], "value string, source_file string, file_arrived_at timestamp"
    )


def _reasons(spark, params, lines, ds=contract.CHAT_MESSAGES):
    rows = classify(parse(_raw(spark, lines), ds), ds, params).select("reason").collect()
    return [r.reason for r in rows]


def _with(**changes):
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...})


@pytest.mark.parametrize(
    "line,reason",
    [
        ('{"message_id": "m1", "user_id": "alice", "text": "unterminated', "malformed_json"),
        ("[1, 2, 3]", "malformed_json"),
        ("", "malformed_json"),
        (_with(user_id=...), "missing_field:user_id"),
        (_with(text="   "), "missing_field:text"),
        (_with(role="system"), "unknown_enum:role"),
        (_with(surface="telegram"), "unknown_enum:surface"),
        (_with(country="FRA"), "invalid_country"),
        (_with(country="XX"), "invalid_country"),
        (_with(sent_at="yesterday at noon"), "invalid_timestamp:sent_at"),
        (_with(sent_at="2025-12-13T10:00:00Z"), "timestamp_outside_window"),
        (_with(sent_at="2025-12-17T06:00:01Z"), "timestamp_outside_window"),
        (_with(sent_at="2099-01-01T00:00:00Z"), "future_timestamp"),
    ],
)
def test_bad_chat_row_is_quarantined_with_its_reason(spark, params, line, reason):
    assert _reasons(spark, params, [line]) == [reason]


@pytest.mark.parametrize(
    "line",
    [
        _with(),
        _with(locale=...),  # locale may be missing
        _with(sent_at="2025-12-15T19:00:00Z"),  # inside the 6 h tolerance before the date
        _with(sent_at="2025-12-16T23:30:00+00:00"),
        _with(model="assistant-v4", role="assistant"),
    ],
)
def test_valid_chat_rows_pass_the_contract(spark, params, line):
    assert _reasons(spark, params, [line]) == [None]


@pytest.mark.parametrize(
    "ds,record,reason",
    [
        (
            contract.USER_PROFILES,
            {"user_id": "a", "birth_year": "nineteen", "country": "FR", "updated_at": "2025-12-16T01:00:00Z"},
            "invalid_value:birth_year",
        ),
        (
            contract.USER_PROFILES,
            {"user_id": "a", "birth_year": 2031, "country": "FR", "updated_at": "2025-12-16T01:00:00Z"},
            "invalid_value:birth_year",
        ),
        (
            contract.USER_PROFILES,
            {"user_id": "a", "birth_year": None, "country": "FR", "updated_at": "2025-12-16T01:00:00Z"},
            None,
        ),
        (
            contract.AD_PREFERENCES,
            {"user_id": "a", "ai_chat_ads": "maybe", "updated_at": "2025-12-16T01:00:00Z"},
            "invalid_value:ai_chat_ads",
        ),
        (
            contract.AD_PREFERENCES,
            {"user_id": "a", "ai_chat_ads": False, "personalized_ads": None, "updated_at": "2025-12-16T01:00:00Z"},
            None,
        ),
        (
            contract.ERASURE_REQUESTS,
            {"request_id": "r", "user_id": "a", "scope": "conversation", "requested_at": "2025-12-16T01:00:00Z"},
            "missing_field:target_id",
        ),
        (
            contract.ERASURE_REQUESTS,
            {"request_id": "r", "user_id": "a", "scope": "everything", "requested_at": "2025-12-16T01:00:00Z"},
            "unknown_enum:scope",
        ),
        (
            contract.ERASURE_REQUESTS,
            {
                "request_id": "r",
                "user_id": "a",
                "scope": "account",
                "target_id": None,
                "requested_at": "2025-12-16T01:00:00Z",
            },
            None,
        ),
        (
            contract.ENGAGEMENT_EVENTS,
            {
                "event_id": "e",
                "user_id": "a",
                "event_type": "like",
                "object_topic": "astrology",
                "country": "FR",
                "surface": "instagram",
                "occurred_at": "2025-12-16T01:00:00Z",
            },
            "unknown_enum:object_topic",
        ),
    ],
)
def test_other_datasets_check_their_own_fields(spark, params, ds, record, reason):
    assert _reasons(spark, params, [json.dumps(record)], ds) == [reason]


@pytest.fixture
def los_angeles(monkeypatch):
    """The Python process in another zone (the driver's local zone is what PySpark reads naive
    datetimes in)."""
    import time

    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    "sent_at,reason",
    [
        ("2025-12-15T18:00:00Z", None),  # window opens 6 h before the UTC date
        ("2025-12-15T17:59:59Z", "timestamp_outside_window"),
        ("2025-12-17T05:59:59Z", None),
        ("2025-12-17T06:00:00Z", "timestamp_outside_window"),  # window closes 6 h after it
        ("2025-12-18T02:00:01Z", "future_timestamp"),  # after the run's start (as_of)
    ],
)
def test_window_and_future_checks_do_not_depend_on_the_hosts_time_zone(spark, params, los_angeles, sent_at, reason):
    lines = [_with(sent_at=sent_at)]
    if reason == "future_timestamp":
        params = dataclasses.replace(params, tolerance_hours=48)
    assert _reasons(spark, params, lines) == [reason]


def test_run_start_must_be_timezone_aware(params):
    with pytest.raises(ValueError, match="timezone-aware"):
        dataclasses.replace(params, as_of=dt.datetime(2025, 12, 18, 2, 0))


def test_duplicates_keep_one_copy_and_count_the_rest(spark, params):
    ds = contract.CHAT_MESSAGES
    lines = [_with(role="bot"), _with(), _with(), _with(message_id="m2"), _with(message_id="m3", role="bot")]
    rows = mark_duplicates(classify(parse(_raw(spark, lines), ds), ds, params), ds, None)
    statuses = sorted(r.status for r in rows.collect())
    assert statuses == ["accepted", "accepted", "duplicate", "quarantined", "quarantined"]


def test_a_message_already_in_bronze_on_an_earlier_date_is_a_duplicate(spark, params):
    ds = contract.CHAT_MESSAGES
    prior = spark.createDataFrame([("m1",)], "message_id string")
    rows = mark_duplicates(classify(parse(_raw(spark, [_with(), _with(message_id="m9")]), ds), ds, params), ds, prior)
    statuses = {r.p.message_id: r.status for r in rows.collect()}
    assert statuses == {"m1": "duplicate", "m9": "accepted"}


@pytest.mark.parametrize(
    "ds,record",
    [
        (
            contract.ERASURE_REQUESTS,
            {"request_id": "r", "user_id": "a", "scope": "account", "requested_at": "2025-11-02T09:00:00Z"},
        ),  # weeks late
        (
            contract.ERASURE_REQUESTS,
            {"request_id": "r", "user_id": "a", "scope": "account", "requested_at": "2031-01-01T00:00:00Z"},
        ),  # clock of the sender wrong
        (contract.AD_PREFERENCES, {"user_id": "a", "ai_chat_ads": False, "updated_at": "2025-12-01T08:00:00Z"}),
        (contract.AD_PREFERENCES, {"user_id": "a", "ai_chat_ads": False, "updated_at": "2030-06-01T08:00:00Z"}),
    ],
)
def test_erasures_and_preference_changes_are_taken_whatever_their_timestamp(spark, params, ds, record):
    assert _reasons(spark, params, [json.dumps(record)], ds) == [None]


def test_an_unparseable_legal_request_is_still_quarantined(spark, params):
    ds = contract.AD_PREFERENCES
    assert _reasons(spark, params, ['{"user_id": "a", "ai_chat_ads": fal'], ds) == ["malformed_json"]


def _engagement(**changes):
    return json.dumps(
        {
            "event_id": "e1",
            "user_id": "alice",
            "event_type": "like",
            "object_id": "o1",
            "object_topic": "fitness",
            "query_text": None,
            "country": "FR",
            "surface": "instagram",
            "occurred_at": "2025-12-16T10:00:00+00:00",
            **changes,
        }
    )


def test_engagement_with_a_sensitive_topic_is_kept_without_the_topic(spark, params):
    ds = contract.ENGAGEMENT_EVENTS
    lines = [_engagement(event_id="e1", object_topic="health"), _engagement(event_id="e2", object_topic="fitness")]
    rows = mark_duplicates(classify(parse(_raw(spark, lines), ds), ds, params), ds, None)
    bronze = {r.event_id: r.object_topic for r in to_bronze(rows, ds, params).collect()}
    assert bronze == {"e1": None, "e2": "fitness"}


def test_quarantined_engagement_keeps_no_sensitive_topic_beside_the_key(spark, params):
    ds = contract.ENGAGEMENT_EVENTS
    line = _engagement(object_topic="sexual_orientation", surface="tiktok")
    [q] = to_quarantine(classify(parse(_raw(spark, [line]), ds), ds, params), ds, params).collect()
    assert q.reason == "unknown_enum:surface" and q.user_key
    assert "sexual_orientation" not in q.raw_redacted and "[WITHHELD]" in q.raw_redacted


@pytest.mark.parametrize(
    "line,secrets",
    [
        # parseable but rejected: re-encoded from its fields, escapes decoded before redaction
        (_with(role="system", country="FR", text="num\u00e9ro:\n06 12 34 56 78"), ["alice", "06 12 34 56 78"]),
        (
            _with(role="system", text="tel\t+33 6 12 34 56 78\nmail bob@example.org"),
            ["alice", "+33 6 12 34 56 78", "bob@example.org"],
        ),
        # single quotes parse too (Spark allows them): the user_id is still replaced
        (
            "{'message_id': 'm1', 'user_id': 'alice', 'role': 'bot', 'text': 'call 415 555 0132'}",
            ["alice", "415 555 0132"],
        ),
        # cannot be parsed: only the shape is kept
        ('{"message_id": "m1", "user_id": "alice", "text": "call 06 12 34 56 78', ["alice", "06 12 34 56 78", "m1"]),
        ("{'message_id': 'm1', 'user_id': 'alice', 'text': 'unterminated", ["alice", "unterminated"]),
        ('{message_id: m1, user_id: alice, text: "hi 0151 23456789"}', ["alice", "0151 23456789", "23456789"]),
        ("user_id=alice;phone=+49 151 23456789", ["alice", "23456789"]),
    ],
)
def test_quarantine_keeps_no_raw_id_or_pii_whatever_the_lines_shape(spark, params, line, secrets):
    ds = contract.CHAT_MESSAGES
    [q] = to_quarantine(classify(parse(_raw(spark, [line]), ds), ds, params), ds, params).collect()
    assert q.reason
    assert [x for x in secrets if x in q.raw_redacted] == [], q.raw_redacted
    assert q.user_key == hmac.new(KEY, b"alice", hashlib.sha256).hexdigest(), "erasure can still find it"


def test_bronze_row_holds_user_key_and_redacted_text_never_the_raw_id(spark, params):
    ds = contract.CHAT_MESSAGES
    line = _with(text="call me on +33 6 12 34 56 78 or bob@example.org")
    rows = mark_duplicates(classify(parse(_raw(spark, [line]), ds), ds, params), ds, None)
    bronze = to_bronze(rows, ds, params).collect()[0].asDict()
    assert "user_id" not in bronze
    assert bronze["user_key"] == hmac.new(KEY, b"alice", hashlib.sha256).hexdigest()
    assert bronze["text"] == "call me on [PHONE] or [EMAIL]"
    assert sorted(bronze["pii_redacted"]) == ["email", "phone"]
    assert bronze["language"] == "pt" and bronze["sent_at"] == dt.datetime(2025, 12, 16, 10, 0)


def test_quarantine_keeps_reason_but_not_the_raw_user_id_or_pii(spark, params):
    ds = contract.CHAT_MESSAGES
    line = _with(role="system", text="mail carol@example.org")
    rows = classify(parse(_raw(spark, [line, '{"user_id": "alice", "text": "broken']), ds), ds, params)
    quarantined = to_quarantine(rows, ds, params).collect()
    assert {q.reason for q in quarantined} == {"unknown_enum:role", "malformed_json"}
    expected_key = hmac.new(KEY, b"alice", hashlib.sha256).hexdigest()
    for q in quarantined:
        assert "alice" not in q.raw_redacted and "carol@example.org" not in q.raw_redacted
        assert q.user_key == expected_key
