"""Precision and recall of the tagger against labelled records ({"topics": [...], "sensitive": [...]}):
per label, topic micro-averages, and sensitive-message recall and false-positive rate, which matter
most (a missed sensitive message is a legal breach, a missed interest a lost ad)."""

from __future__ import annotations

from collections import Counter

NONE = "(none)"


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def score(expected: dict[str, dict], predicted: dict[str, dict]) -> dict:
    """expected/predicted: id -> {"topics": set, "sensitive": set}. Returns rows, totals and the
    sensitive confusion: (expected category or (none), predicted category or (none)) -> messages."""
    tp, fp, fn = Counter(), Counter(), Counter()
    kind_of = {}
    confusion = Counter()
    sensitive_msgs = detected_msgs = clean_msgs = false_alarms = 0
    for rec_id, exp in expected.items():
        got = predicted.get(rec_id, {"topics": set(), "sensitive": set()})
        for kind in ("topics", "sensitive"):
            for label in exp[kind] | got[kind]:
                kind_of[label] = kind
                if label in exp[kind] and label in got[kind]:
                    tp[label] += 1
                elif label in got[kind]:
                    fp[label] += 1
                else:
                    fn[label] += 1
        for e in exp["sensitive"] or {NONE}:
            for g in got["sensitive"] or {NONE}:
                confusion[(e, g)] += 1
        if exp["sensitive"]:
            sensitive_msgs += 1
            detected_msgs += bool(got["sensitive"])
        else:
            clean_msgs += 1
            false_alarms += bool(got["sensitive"])
    rows = [
        {
            "label": label,
            "kind": kind_of[label],
            "support": tp[label] + fn[label],
            "tp": tp[label],
            "fp": fp[label],
            "fn": fn[label],
            "precision": _ratio(tp[label], tp[label] + fp[label]),
            "recall": _ratio(tp[label], tp[label] + fn[label]),
        }
        for label in sorted(kind_of, key=lambda l: (kind_of[l], l))
    ]
    topic = [l for l, k in kind_of.items() if k == "topics"]
    t_tp, t_fp, t_fn = (sum(c[l] for l in topic) for c in (tp, fp, fn))
    return {
        "rows": rows,
        "topic_precision": _ratio(t_tp, t_tp + t_fp),
        "topic_recall": _ratio(t_tp, t_tp + t_fn),
        "topic_micro_f1": _ratio(2 * t_tp, 2 * t_tp + t_fp + t_fn),
        "sensitive_message_recall": _ratio(detected_msgs, sensitive_msgs),
        "sensitive_false_positive_rate": _ratio(false_alarms, clean_msgs),
        "sensitive_messages": sensitive_msgs,
        "messages": len(expected),
        "confusion": confusion,
    }


def confusion_rows(confusion: Counter) -> list[dict]:
    """The sensitive confusion as table rows: one per expected category, one column per predicted."""
    expected = sorted({e for e, _ in confusion} - {NONE}) + [NONE]
    predicted = sorted({g for _, g in confusion} - {NONE}) + [NONE]
    return [{"expected \\ predicted": e, **{g: confusion.get((e, g), 0) for g in predicted}} for e in expected]
