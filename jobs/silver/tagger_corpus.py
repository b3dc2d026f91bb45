"""The tagger's labelled corpus: every `*.jsonl` file of a folder, one {"id", "locale", "text",
"topics", "sensitive"} per line, checked against conf's labels, and split once by a fixed rule on
the id (`split_of`; `*.train.jsonl` files, whose texts tuned the vocabulary, are train only): train
fits the models, dev picks each label's threshold, test is only reported."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from jobs.config import Config
from jobs.errors import AudienceError

SPLITS = ("train", "dev", "test")
# Files whose texts were used to tune the vocabulary are never scored: train only.
TRAIN_ONLY = ".train.jsonl"


def split_of(record_id: str) -> str:
    """The fixed rule: the id's SHA-256 modulo 10; 0-5 train, 6-7 dev, 8-9 test."""
    bucket = int(hashlib.sha256(record_id.encode("utf-8")).hexdigest(), 16) % 10
    return "train" if bucket < 6 else "dev" if bucket < 8 else "test"


def read_corpus(path: Path, labels: dict[str, set[str]]) -> list[dict]:
    """Every record of a JSON-lines file, or of every *.jsonl in a folder, checked: unknown labels
    and duplicate ids are errors."""
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not path.exists() or not files:
        raise AudienceError(f"{path}: no such file, or a folder without *.jsonl files")
    records, seen = [], {}
    for path in files:
        for n, line in enumerate(path.open(encoding="utf-8"), 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                rec = json.loads(line)
                rec_id, text = str(rec["id"]), str(rec["text"])
                kinds = {k: set(rec.get(k, [])) for k in ("topics", "sensitive")}
            except (ValueError, KeyError, TypeError):
                raise AudienceError(
                    f'{where}: expected a JSON object with "id", "text", "topics" and "sensitive"'
                ) from None
            for kind, got in kinds.items():
                unknown = sorted(got - labels[kind])
                if unknown:
                    raise AudienceError(
                        f"{where}: unknown {kind} {unknown} (conf/taxonomy.yaml has: {', '.join(sorted(labels[kind]))})"
                    )
            if rec_id in seen:
                raise AudienceError(f"{where}: id {rec_id} already used at {seen[rec_id]}")
            seen[rec_id] = where
            records.append(
                {
                    "id": rec_id,
                    "text": text,
                    "locale": rec.get("locale"),
                    **kinds,
                    "split": "train" if path.name.endswith(TRAIN_ONLY) else split_of(rec_id),
                }
            )
    return sorted(records, key=lambda r: r["id"])


def label_sets(cfg: Config) -> dict[str, list[str]]:
    return {
        "sensitive": sorted(t.topic_id for t in cfg.topics.values() if t.sensitive),
        "topics": sorted(t.topic_id for t in cfg.topics.values() if not t.sensitive),
    }


def read_labelled(cfg: Config, path: Path, split: str | None = None) -> list[dict]:
    """The corpus at path checked against conf's labels; only one split's records when given."""
    records = read_corpus(path, {k: set(v) for k, v in label_sets(cfg).items()})
    return [r for r in records if split in (None, r["split"])]
