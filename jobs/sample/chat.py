"""Sample chat messages of one day: multi-turn conversations in the user's language, sensitive
turns, PII, and the bad rows, duplicates and late lines the day's writer plants."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter

from jobs.sample import corpus

SURFACES = ("messenger", "whatsapp", "instagram", "facebook")
CHAT_BAD_KINDS = (
    "malformed_json",
    "missing_field:user_id",
    "unknown_enum:role",
    "invalid_country",
    "timestamp_outside_window",
    "future_timestamp",
)


def ts(day: dt.date, seconds: int) -> str:
    h, rem = divmod(seconds, 3600)
    return f"{day.isoformat()}T{h:02d}:{rem // 60:02d}:{rem % 60:02d}Z"


class DayWriter:
    """Collects one day's lines per dataset, plants bad rows/duplicates/late rows, writes files."""

    def __init__(self, rng: random.Random, opts, day: dt.date):
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
            record["sent_at"] = ts(self.day - dt.timedelta(days=3), 43200)
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


def chat_day(rng, opts, day, users, writer, conversations_out):
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
                "sent_at": ts(day, start + 60 * t),
            }
            if rng.random() > 0.05:
                record["locale"] = corpus.LOCALE[lang]
            if role == "assistant":
                record["model"] = "assistant-v4"
            writer.add(record)
            written += 1
            if written >= opts.messages_per_day:
                break
