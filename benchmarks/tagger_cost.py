"""What tagging costs per night: N chat messages through the nightly job's tagger, with the
vocabulary alone and with the vocabulary plus the learned model, written to Spark's `noop` sink.

    .venv/bin/python benchmarks/tagger_cost.py --messages 1000000 [--repeat 3] [--json out.json]

Texts cycle through the labelled corpus (models/tagger_corpus), so lengths and languages are real;
message ids are unique. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import time

from pyspark.sql import functions as F

from jobs import REPO_ROOT
from jobs.cli.common import render_table
from jobs.config import load_config
from jobs.session import build_spark
from jobs.silver import tagger_model
from jobs.silver.tagger import tag, vocabulary_frame
from jobs.silver.tagger_corpus import read_labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tagger, alternating; the fastest counts")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    cfg = load_config()
    spark = build_spark(cfg, "tagger-cost")
    corpus = read_labelled(cfg, REPO_ROOT / "models" / "tagger_corpus")
    texts = spark.createDataFrame(
        [(i, r["text"], r["locale"][:2]) for i, r in enumerate(corpus)], "k long, text string, language string"
    )
    messages = (
        spark.range(args.messages)
        .select(
            F.concat(F.lit("m"), F.col("id").cast("string")).alias("message_id"), (F.col("id") % len(corpus)).alias("k")
        )
        .join(F.broadcast(texts), on="k")
        .drop("k")
        .cache()
    )
    messages.count()
    vocab = vocabulary_frame(spark, cfg).cache()
    model = tagger_model.load(cfg.tagger_model)
    taggers = (("vocabulary", None), ("vocabulary + model", model))
    best = {}
    for _ in range(args.repeat):  # alternating, so JIT warm-up and noise fall on both alike
        for name, m in taggers:
            tagged = tag(messages, vocab, cfg.languages, cfg.negation_window, model=m)
            start = time.monotonic()
            tagged.write.format("noop").mode("overwrite").save()
            best[name] = min(best.get(name, float("inf")), time.monotonic() - start)
    rows = []
    for name, seconds in best.items():
        rows.append(
            {
                "tagger": name,
                "messages": args.messages,
                "seconds": round(seconds, 1),
                "messages_per_s": int(args.messages / seconds),
            }
        )
    rows.append({"tagger": "ratio", "seconds": round(rows[1]["seconds"] / rows[0]["seconds"], 2)})
    print(render_table(rows))
    print(f"model {model.version}, {spark.sparkContext.defaultParallelism} cores")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"model": model.version, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
