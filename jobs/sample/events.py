"""Sample engagement events of one day, consistent with users' interests, as a Parquet table."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pyarrow as pa

from jobs.sample import corpus
from jobs.sample.chat import SURFACES

EVENT_WEIGHTS = {"view": 30, "like": 25, "click": 15, "search": 12, "comment": 7, "share": 6, "follow": 5}
EVENT_BAD_KINDS = (
    "missing_field:user_id",
    "unknown_enum:event_type",
    "invalid_country",
    "timestamp_outside_window",
    "unknown_enum:object_topic",
)
SENSITIVE_OBJECT_TOPICS = ("health", "religion", "politics", "sexual_orientation")


def events_day(rng, opts, day, users, topic_ids):
    n = opts.events_per_day if opts.events_per_day is not None else max(50, opts.messages_per_day // 2)
    phrases = corpus.TOPIC_PHRASES
    types, weights = zip(*EVENT_WEIGHTS.items())
    cols = {
        k: []
        for k in (
            "event_id",
            "user_id",
            "event_type",
            "object_id",
            "object_topic",
            "query_text",
            "country",
            "surface",
            "occurred_at",
        )
    }
    midnight = dt.datetime.combine(day, dt.time())
    planted = Counter()
    stamp = day.strftime("%Y%m%d")
    for i in range(n):
        user = users[rng.randrange(len(users))]
        etype = rng.choices(types, weights)[0]
        draw = rng.random()
        topic = (
            rng.choice(user.interests)
            if draw < 0.75
            else rng.choice(SENSITIVE_OBJECT_TOPICS)
            if draw < 0.8
            else rng.choice(topic_ids)
        )
        row = {
            "event_id": f"e{stamp}{i:08d}",
            "user_id": user.user_id,
            "event_type": etype,
            "object_id": None if etype == "search" else f"obj{rng.randrange(10**6)}",
            "object_topic": None if etype == "search" else topic,
            "query_text": (
                rng.choice(phrases[topic][user.lang].split("|")) if etype == "search" and topic in phrases else None
            ),
            "country": user.country,
            "surface": rng.choice(SURFACES),
            "occurred_at": midnight + dt.timedelta(seconds=rng.randrange(86400)),
        }
        copies = 2 if rng.random() < opts.duplicate_rate else 1
        if rng.random() < opts.bad_rate:  # a re-delivered bad row is quarantined twice, not deduplicated
            kind = rng.choice(EVENT_BAD_KINDS)
            planted[kind] += copies
            if kind == "missing_field:user_id":
                row["user_id"] = None
            elif kind == "unknown_enum:event_type":
                row["event_type"] = "poke"
            elif kind == "invalid_country":
                row["country"] = "ZZ"
            elif kind == "timestamp_outside_window":
                row["occurred_at"] = midnight - dt.timedelta(days=2)
            else:
                row["object_topic"], row["event_type"] = "astrology", "like"
        else:
            planted["duplicate"] += copies - 1
        for _ in range(copies):
            for k, v in row.items():
                cols[k].append(v)
    schema = pa.schema(
        [(k, pa.string()) for k in cols if k != "occurred_at"] + [("occurred_at", pa.timestamp("us", tz="UTC"))]
    )
    return pa.table(cols, schema=schema), planted
