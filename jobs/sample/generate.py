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
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from jobs.sample import corpus
from jobs.sample.chat import DayWriter, chat_day, ts
from jobs.sample.events import events_day

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


@dataclass
class GenerateOptions:
    start: dt.date
    days: int = 1
    messages_per_day: int = 20_000
    seed: int = 7
    bad_rate: float = 0.01
    duplicate_rate: float = 0.01
    late_rate: float = 0.05
    users: int | None = None  # default: one user per 8 messages of a day (at least 300)
    events_per_day: int | None = None  # default: half the messages
    # Interest popularity falls with a topic's rank as 1 / rank ** topic_skew, so that a few topics
    # reach most users and the tail stays small, as on a real platform. 0: uniform (the tests' data).
    topic_skew: float = 0.0


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
    ranked = random.Random(f"{opts.seed}-popularity").sample(topic_ids, len(topic_ids))
    popularity = [1 / (rank + 1) ** opts.topic_skew for rank in range(len(ranked))]
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
                interests=_weighted_sample(rng, ranked, popularity, rng.randint(2, 4))
                if opts.topic_skew
                else rng.sample(topic_ids, rng.randint(2, 4)),
                birth_year=birth_year,
                has_profile=rng.random() > 0.03,
                ai_chat_ads=not (opt < 0.05),
                personalized_ads=False if 0.05 <= opt < 0.08 else (True if opt < 0.5 else None),
            )
        )
    return users


def _weighted_sample(rng, items: list[str], weights: list[float], k: int) -> list[str]:
    """k distinct items, each draw in proportion to its weight among those not yet drawn."""
    items, weights, picked = list(items), list(weights), []
    for _ in range(k):
        i = rng.choices(range(len(items)), weights)[0]
        picked.append(items.pop(i))
        weights.pop(i)
    return picked


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
        chat_day(rng, opts, day, users, writer, conversations)
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

        events, planted = events_day(rng, opts, day, users, topic_ids)
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
                    "updated_at": ts(day, midnight),
                }
                for u in users
                if u.has_profile
            ]
            prefs = [
                {
                    "user_id": u.user_id,
                    "ai_chat_ads": u.ai_chat_ads,
                    "personalized_ads": u.personalized_ads,
                    "updated_at": ts(day, midnight),
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
                    "updated_at": ts(day, midnight + 60),
                }
                for u in movers
            ]
            flippers = rng.sample(users, max(1, len(users) // 500))
            prefs = [
                {
                    "user_id": u.user_id,
                    "ai_chat_ads": rng.random() < 0.5,
                    "personalized_ads": None,
                    "updated_at": ts(day, midnight + 120),
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
                    "requested_at": ts(day, 36000 + n),
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
