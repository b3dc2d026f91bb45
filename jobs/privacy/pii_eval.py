"""Recall and false positives of PII redaction against a labelled JSON-lines corpus
({"text", "country", "kind": phone|email|card|iban|none, "pii": [values that must go]}).

A positive is caught when none of its values survives and its kind's placeholder appears; a
negative (`none`) is a false positive when redaction changes its text at all."""

from __future__ import annotations

from collections import Counter

from jobs.privacy.pii import PLACEHOLDERS, redact_pii

KINDS = (*PLACEHOLDERS, "none")


def redact_records(spark, records: list[dict]) -> list[str]:
    """The redacted text of each record, by the same expression ingest uses."""
    frame = spark.createDataFrame(
        [(i, r["text"], r.get("country")) for i, r in enumerate(records)], "i long, text string, country string"
    )
    out = {r.i: r.redacted for r in frame.select("i", redact_pii("text", "country").alias("redacted")).collect()}
    return [out[i] for i in range(len(records))]


def score(records: list[dict], redacted: list[str]) -> dict:
    """Per kind: cases, caught (positives) or changed (negatives), and the misses' texts."""
    cases, hits, misses = Counter(), Counter(), {k: [] for k in KINDS}
    for record, out in zip(records, redacted):
        kind = record["kind"]
        cases[kind] += 1
        if kind == "none":
            ok = out != record["text"]  # a false positive
        else:
            ok = not any(v in out for v in record["pii"]) and PLACEHOLDERS[kind] in out
        hits[kind] += ok
        if ok == (kind == "none"):
            misses[kind].append(f"{record['text']} -> {out}")
    rows = [
        {
            "kind": k,
            "cases": cases[k],
            "recall": hits[k] / cases[k] if k != "none" and cases[k] else None,
            "false_positives": hits[k] if k == "none" else None,
        }
        for k in KINDS
        if cases[k]
    ]
    return {"rows": rows, "misses": misses}
