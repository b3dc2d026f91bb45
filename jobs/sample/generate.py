"""Deterministic sample landing data in the exact SPEC section 3 format.

Users across regions with a few interests each; multi-turn conversations written in the user's
language; engagement consistent with interests; profiles (minors, missing ages, users without a
profile); ad preferences (opt-outs of both kinds); erasure requests of every scope; sensitive
conversations; PII; bad rows, duplicates and late files at configurable rates.

A manifest per day (`<landing>/_generator/date=D.json`) records what was planted, so tests can
check ingest against the plan rather than against ingest's own output.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.sample import corpus

# Country mix of the user base: EU-heavy (rollout starts there), then other regions.
COUNTRY_WEIGHTS = {
    "FR": 12,
    "DE": 12,
    "ES": 8,
    "IT": 8,
    "NL": 5,
    "PL": 5,
    "PT": 3,
    "BE": 3,
    "AT": 2,
    "IE": 2,
    "SE": 1,
    "US": 14,
    "GB": 8,
    "CA": 3,
    "BR": 5,
    "IN": 4,
    "AU": 2,
    "JP": 1,
    "MX": 2,
    "AR": 1,
    "ZA": 1,
    "CH": 1,
}
EVENT_WEIGHTS = {"view": 30, "like": 25, "click": 15, "search": 12, "comment": 7, "share": 6, "follow": 5}
SURFACES = ("messenger", "whatsapp", "instagram", "facebook")
CHAT_BAD_KINDS = (
    "malformed_json",
    "missing_field:user_id",
    "unknown_enum:role",
    "invalid_country",
    "timestamp_outside_window",
    "future_timestamp",
)
EVENT_BAD_KINDS = (
    "missing_field:user_id",
    "unknown_enum:event_type",
    "invalid_country",
    "timestamp_outside_window",
    "unknown_enum:object_topic",
)
SENSITIVE_OBJECT_TOPICS = ("health", "religion", "politics", "sexual_orientation")


@dataclass
class GenerateOptions:
    start: dt.date
    days: int = 1
    messages_per_day: int = 20_000
    seed: int = 7
    bad_rate: float = 0.01
    duplicate_rate: float = 0.01
    late_rate: float = 0.05
    users: int | None = None


@dataclass
class User:
    user_id: str
    country: str
    lang: str
    interests: list[str]
    birth_year: int | None
    has_profile: bool
    ai_chat_ads: bool
    personalized_ads: bool | None


def make_users(opts: GenerateOptions, topic_ids: list[str]) -> list[User]:
    rng = random.Random(f"{opts.seed}-users")
    n = opts.users or max(300, opts.messages_per_day // 8)
    countries, weights = zip(*COUNTRY_WEIGHTS.items())
    users = []
    for i in range(n):
        country = rng.choices(countries, weights)[0]
        age_draw = rng.random()
        birth_year = (
            None
            if age_draw < 0.05
            else opts.start.year - rng.randint(13, 17)
            if age_draw < 0.12
            else opts.start.year - rng.randint(18, 75)
        )
        opt = rng.random()
        users.append(
            User(
                user_id=f"u{rng.getrandbits(40):012d}{i}",
                country=country,
                lang=corpus.LANG_BY_COUNTRY.get(country, "en"),
                interests=rng.sample(topic_ids, rng.randint(2, 4)),
                birth_year=birth_year,
                has_profile=rng.random() > 0.03,
                ai_chat_ads=not (opt < 0.05),
                personalized_ads=False if 0.05 <= opt < 0.08 else (True if opt < 0.5 else None),
            )
        )
    return users


def _ts(day: dt.date, seconds: int) -> str:
    h, rem = divmod(seconds, 3600)
    return f"{day.isoformat()}T{h:02d}:{rem // 60:02d}:{rem % 60:02d}Z"


class DayWriter:
    """Collects one day's lines per dataset, plants bad rows/duplicates/late rows, writes files."""

    def __init__(self, rng: random.Random, opts: GenerateOptions, day: dt.date):
        self.rng, self.opts, self.day = rng, opts, day
        self.main: list[str] = []
        self.late: list[str] = []
        self.planted = Counter()

    def corrupt_chat(self, record: dict) -> str:
        kind = self.rng.choice(CHAT_BAD_KINDS)
        self.planted[kind] += 1
        if kind == "malformed_json":
            line = json.dumps(record, ensure_ascii=False)
            return line[: len(line) // 2]
        if kind == "missing_field:user_id":
            record.pop("user_id")
        elif kind == "unknown_enum:role":
            record["role"] = "system"
        elif kind == "invalid_country":
            record["country"] = self.rng.choice(["XX", "FRA", "eu", "UK"])
        elif kind == "timestamp_outside_window":
            record["sent_at"] = _ts(self.day - dt.timedelta(days=3), 43200)
        elif kind == "future_timestamp":
            record["sent_at"] = "2099-01-01T00:00:00Z"
        return json.dumps(record, ensure_ascii=False)

    def add(self, record: dict) -> None:
        rng = self.rng
        if rng.random() < self.opts.bad_rate:
            line = self.corrupt_chat(record)
        else:
            line = json.dumps(record, ensure_ascii=False)
            if rng.random() < self.opts.duplicate_rate:
                self.planted["duplicate"] += 1
                (self.late if rng.random() < 0.5 else self.main).append(line)
        (self.late if rng.random() < self.opts.late_rate else self.main).append(line)


def _chat_day(rng, opts, day, users, writer, conversations_out):
    tpl_user, tpl_neg, tpl_asst = corpus.USER_TEMPLATES, corpus.NEGATED_TEMPLATES, corpus.ASSISTANT_TEMPLATES
    phrases = {t: {lang: p.split("|") for lang, p in v.items()} for t, v in corpus.TOPIC_PHRASES.items()}
    all_topics = list(phrases)
    n_users = len(users)
    written, conv_no = 0, 0
    stamp = day.strftime("%Y%m%d")
    while written < opts.messages_per_day:
        user = users[rng.randrange(n_users)]
        conv_id = f"c{stamp}{conv_no:07d}"
        conv_no += 1
        lang = user.lang
        topic = rng.choice(user.interests)
        sensitive = rng.random() < 0.03
        surface = rng.choice(SURFACES)
        start = rng.randrange(0, 86400 - 600)
        turns = rng.choice((2, 2, 4, 4, 6, 8))
        conversations_out.append((conv_id, user.user_id))
        for t in range(turns):
            role = "user" if t % 2 == 0 else "assistant"
            x = rng.choice(phrases[topic][lang])
            if role == "assistant":
                text = rng.choice(tpl_asst[lang]).format(x=x)
            elif t == 2 and sensitive:
                text = corpus.SENSITIVE_SENTENCES[rng.choice(list(corpus.SENSITIVE_SENTENCES))][lang]
            elif t >= 4 and rng.random() < 0.5:
                text = rng.choice(corpus.SMALL_TALK[lang])
            elif rng.random() < 0.08:
                other = rng.choice([o for o in all_topics if o not in user.interests])
                text = rng.choice(tpl_neg[lang]).format(x=rng.choice(phrases[other][lang]))
            else:
                text = rng.choice(tpl_user[lang]).format(x=x)
            if role == "user" and rng.random() < 0.02:
                kind = rng.choice(list(corpus.PII_TEMPLATES))
                value = {
                    "email": f"{user.user_id[:6]}.mail@example.org",
                    "phone": rng.choice(corpus.PHONES),
                    "card": rng.choice(corpus.CARDS),
                    "iban": rng.choice(corpus.IBANS),
                }[kind]
                text = f"{text} {corpus.PII_TEMPLATES[kind].format(v=value)}"
            record = {
                "message_id": f"m{stamp}{conv_no:07d}{t:02d}",
                "conversation_id": conv_id,
                "user_id": user.user_id,
                "role": role,
                "text": text,
                "country": user.country,
                "surface": surface,
                "sent_at": _ts(day, start + 60 * t),
            }
            if rng.random() > 0.05:
                record["locale"] = corpus.LOCALE[lang]
            if role == "assistant":
                record["model"] = "assistant-v4"
            writer.add(record)
            written += 1
            if written >= opts.messages_per_day:
                break


def _events_day(rng, opts, day, users, topic_ids):
    n = max(50, opts.messages_per_day // 2)
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


def _jsonl(path: Path, records) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def generate(landing, opts: GenerateOptions, topic_ids: list[str], progress=None) -> list[dict]:
    """Write opts.days days of landing data from opts.start; returns one manifest per day."""
    landing = Path(landing)
    users = make_users(opts, topic_ids)
    manifests, pending_erasures = [], []
    for offset in range(opts.days):
        day = opts.start + dt.timedelta(days=offset)
        rng = random.Random(f"{opts.seed}-{day.isoformat()}")
        folder = lambda ds: landing / ds / f"date={day.isoformat()}"  # noqa: B023 - used within this iteration
        manifest = {"date": day.isoformat(), "datasets": {}}

        writer, conversations = DayWriter(rng, opts, day), []
        _chat_day(rng, opts, day, users, writer, conversations)
        chat_dir = folder("chat_messages")
        chat_dir.mkdir(parents=True, exist_ok=True)
        (chat_dir / "part-00000.jsonl").write_text("".join(line + "\n" for line in writer.main), encoding="utf-8")
        if writer.late:
            with gzip.open(chat_dir / "late-00001.jsonl.gz", "wt", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in writer.late))
        manifest["datasets"]["chat_messages"] = {
            "lines": len(writer.main) + len(writer.late),
            "late_lines": len(writer.late),
            "planted": dict(writer.planted),
        }

        events, planted = _events_day(rng, opts, day, users, topic_ids)
        folder("engagement_events").mkdir(parents=True, exist_ok=True)
        pq.write_table(events, folder("engagement_events") / "part-00000.parquet")
        manifest["datasets"]["engagement_events"] = {"lines": events.num_rows, "planted": dict(planted)}

        midnight = 3600 * rng.randrange(1, 6)
        if offset == 0:
            profiles = [
                {
                    "user_id": u.user_id,
                    "birth_year": u.birth_year,
                    "country": u.country,
                    "updated_at": _ts(day, midnight),
                }
                for u in users
                if u.has_profile
            ]
            prefs = [
                {
                    "user_id": u.user_id,
                    "ai_chat_ads": u.ai_chat_ads,
                    "personalized_ads": u.personalized_ads,
                    "updated_at": _ts(day, midnight),
                }
                for u in users
                if not u.ai_chat_ads or u.personalized_ads is not None
            ]
        else:
            movers = rng.sample(users, max(1, len(users) // 200))
            profiles = [
                {
                    "user_id": u.user_id,
                    "birth_year": u.birth_year,
                    "country": u.country,
                    "updated_at": _ts(day, midnight + 60),
                }
                for u in movers
            ]
            flippers = rng.sample(users, max(1, len(users) // 500))
            prefs = [
                {
                    "user_id": u.user_id,
                    "ai_chat_ads": rng.random() < 0.5,
                    "personalized_ads": None,
                    "updated_at": _ts(day, midnight + 120),
                }
                for u in flippers
            ]
        manifest["datasets"]["user_profiles"] = {
            "lines": _jsonl(folder("user_profiles") / "part-00000.jsonl", profiles),
            "planted": {},
        }
        manifest["datasets"]["ad_preferences"] = {
            "lines": _jsonl(folder("ad_preferences") / "part-00000.jsonl", prefs),
            "planted": {},
        }

        # Erasures: requests of every scope about earlier conversations, applied the night they land.
        pool = pending_erasures or conversations
        per_scope = max(1, opts.messages_per_day // 20_000)
        requests = []
        for n, (conv_id, user_id) in enumerate(rng.sample(pool, min(len(pool), 4 * per_scope))):
            scope = ("message", "conversation", "all_chats", "account")[n % 4]
            target = {"message": f"m{conv_id[1:]}00", "conversation": conv_id}.get(scope)
            if scope == "message":  # message ids are m<stamp><conv+1><turn>
                target = f"m{conv_id[1:9]}{int(conv_id[9:]) + 1:07d}00"
            requests.append(
                {
                    "request_id": f"r{day:%Y%m%d}{n:05d}",
                    "user_id": user_id,
                    "scope": scope,
                    "target_id": target,
                    "requested_at": _ts(day, 36000 + n),
                }
            )
        manifest["datasets"]["erasure_requests"] = {
            "lines": _jsonl(folder("erasure_requests") / "part-00000.jsonl", requests),
            "planted": {},
        }
        pending_erasures = conversations

        gen_dir = landing / "_generator"
        gen_dir.mkdir(parents=True, exist_ok=True)
        (gen_dir / f"date={day.isoformat()}.json").write_text(json.dumps(manifest, indent=1))
        manifests.append(manifest)
        if progress:
            progress.note(
                f"generated {day}: {manifest['datasets']['chat_messages']['lines']:,} chat lines, "
                f"{events.num_rows:,} events"
            )
    return manifests
