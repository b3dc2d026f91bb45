"""Precision and recall of the tagger against a labelled JSON-lines file
({"id", "text", "locale", "topics": [...], "sensitive": [...]}): per topic, and sensitive recall,
which matters most (a missed sensitive message is a legal breach, a missed interest a lost ad)."""
from __future__ import annotations

from collections import Counter


def score(expected: dict[str, dict], predicted: dict[str, dict]) -> dict:
    """expected/predicted: id -> {"topics": set, "sensitive": set}. Returns rows and totals."""
    tp, fp, fn = Counter(), Counter(), Counter()
    sensitive_msgs = detected_msgs = clean_msgs = false_alarms = 0
    for rec_id, exp in expected.items():
        got = predicted.get(rec_id, {"topics": set(), "sensitive": set()})
        for kind in ("topics", "sensitive"):
            for label in exp[kind] | got[kind]:
                if label in exp[kind] and label in got[kind]:
                    tp[label] += 1
                elif label in got[kind]:
                    fp[label] += 1
                else:
                    fn[label] += 1
        if exp["sensitive"]:
            sensitive_msgs += 1
            detected_msgs += bool(got["sensitive"])
        else:
            clean_msgs += 1
            false_alarms += bool(got["sensitive"])
    rows = []
    for label in sorted(set(tp) | set(fp) | set(fn)):
        p = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else None
        r = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else None
        rows.append({"label": label, "support": tp[label] + fn[label], "tp": tp[label], "fp": fp[label],
                     "fn": fn[label], "precision": p, "recall": r})
    topic_labels = {l for e in expected.values() for l in e["topics"]}
    t_tp = sum(tp[l] for l in tp if l in topic_labels)
    t_fp = sum(fp[l] for l in fp if l not in {s for e in expected.values() for s in e["sensitive"]})
    t_fn = sum(fn[l] for l in fn if l in topic_labels)
    return {
        "rows": rows,
        "topic_precision": t_tp / (t_tp + t_fp) if t_tp + t_fp else None,
        "topic_recall": t_tp / (t_tp + t_fn) if t_tp + t_fn else None,
        "sensitive_message_recall": detected_msgs / sensitive_msgs if sensitive_msgs else None,
        "sensitive_false_alarm_rate": false_alarms / clean_msgs if clean_msgs else None,
        "messages": len(expected),
    }
