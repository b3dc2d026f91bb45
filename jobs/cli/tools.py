"""Commands around the models: tag, train-tagger, redact (each with --evaluate)."""

from __future__ import annotations

import sys
from pathlib import Path

from jobs.cli.common import config_of, render_table, session
from jobs.errors import AudienceError


def _read_jsonl(stream, source: str, required=("id", "text")) -> list[dict]:
    import json

    records = []
    for n, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if any(rec.get(k) is None for k in required if k != "text") or not isinstance(
                rec.get("text", ""), (str, type(None))
            ):
                raise ValueError
        except (ValueError, AttributeError):
            names = " and ".join(f'"{k}"' for k in required)
            raise AudienceError(f"{source} line {n}: expected a JSON object with {names}") from None
        records.append(rec)
    return records


def cmd_tag(args, progress):
    """JSON lines {"id", "text", "locale"} on stdin -> {"id", "topics", "sensitive"} per line;
    with --evaluate PATH (a labelled file or folder), per-label precision and recall, sensitive
    recall and false-positive rate, and the sensitive confusion table. The nightly job's path:
    the vocabulary or the learned model of conf/taxonomy.yaml's `model`."""
    import json

    from jobs.silver import tagger_corpus, tagger_model, tagger_train
    from jobs.silver.tagger_eval import confusion_rows

    cfg = config_of(args)
    if args.evaluate:
        records = tagger_corpus.read_labelled(cfg, Path(args.evaluate), None if args.split == "all" else args.split)
        if not records:
            raise AudienceError(f"{args.evaluate}: no records in the {args.split} split")
    else:
        if args.split != "all":
            raise AudienceError("--split applies to --evaluate only")
        records = _read_jsonl(sys.stdin, "stdin")
    spark = session(cfg, "audience-tag")
    model = tagger_model.load(cfg.tagger_model)
    if not args.evaluate:
        tagged = {r.id: r for r in tagger_train.tag_records(spark, cfg, model, records).collect()}
        for rec in records:
            r = tagged[str(rec["id"])]
            print(json.dumps({"id": rec["id"], "topics": list(r.topics), "sensitive": list(r.sensitive)}))
        return
    result = tagger_train.evaluate(spark, cfg, model, records)
    print(render_table(result["rows"]))
    print("\nSensitive categories, messages by expected (rows) and predicted (columns) category:")
    print(render_table(confusion_rows(result["confusion"])))
    print(
        f"\n{result['messages']} messages ({args.split} split), tagger {model.version}: "
        f"topic precision {result['topic_precision']:.3f}, recall {result['topic_recall']:.3f}, "
        f"micro-F1 {result['topic_micro_f1']:.3f}; sensitive message recall "
        f"{result['sensitive_message_recall']:.3f} ({result['sensitive_messages']} messages), "
        f"false-positive rate {result['sensitive_false_positive_rate']:.3f}"
    )


def cmd_train_tagger(args, progress):
    """Train the learned detector on the corpus, pick thresholds on dev, report dev and test."""
    from jobs.silver import tagger_train

    cfg = config_of(args)
    spark = session(cfg, "audience-train-tagger")
    with progress.stage("train tagger") as step:
        manifest = tagger_train.train(spark, cfg, Path(args.corpus), Path(args.out), progress=progress.note)
        step.detail = manifest["version"]
    rows = [{"split": name, **manifest[f"{name}_scores"]} for name in ("dev", "test")]
    print(render_table(rows))
    folder = Path(args.out) / manifest["version"]
    print(f"\nmodel written to {folder}; to use it, set `model:` in conf/taxonomy.yaml to that folder")


def cmd_redact(args, progress):
    """--evaluate FILE: per-kind recall and false positives of PII redaction on a labelled corpus;
    otherwise JSON lines {"text", "country"} on stdin -> the same with the redacted text."""
    import json

    from jobs.privacy.pii_eval import redact_records, score

    cfg = config_of(args)
    if args.evaluate:
        try:
            with open(args.evaluate, encoding="utf-8") as fh:
                records = _read_jsonl(fh, args.evaluate, ("text", "kind", "pii"))
        except OSError as exc:
            raise AudienceError(f"cannot read {args.evaluate}: {exc.strerror}") from None
    else:
        records = _read_jsonl(sys.stdin, "stdin", ("text",))
    records = [{**r, "text": r.get("text") or ""} for r in records]
    redacted = redact_records(session(cfg, "audience-redact"), records)
    if not args.evaluate:
        for record, out in zip(records, redacted):
            print(json.dumps({**record, "text": out}, ensure_ascii=False))
        return
    result = score(records, redacted)
    print(render_table(result["rows"], ["kind", "cases", "recall", "false_positives"]))
    for kind, missed in result["misses"].items():
        for line in missed:
            print(f"  {'false positive' if kind == 'none' else 'missed ' + kind}: {line}")
