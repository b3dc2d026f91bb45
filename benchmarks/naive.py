"""The nightly as a typical team would first write it, for the benchmark's comparison only: the
product's stages and rules, with three choices swapped for the naive ones.

- The vocabulary tagger is a row-at-a-time Python UDF (the same rules as jobs/silver/tagger.py:
  normalised tokens, exact and `stem*` terms, multi-word terms, negation window, language choice);
  the learned model still runs as Spark ML.
- Each night recomputes the daily signals of the whole scoring window from bronze (one pass over
  its chat turns and events, tagged again), instead of computing the night's date and reading the
  window's earlier dates from silver.
- No broadcast joins: the product's broadcast hints are dropped and the size threshold is off.

Same rules, so the same segment members: `benchmarks/stages.py --naive` runs it on a copy of the
warehouse as it stood before the measured night and compares gold with the product's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re

from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import tables as t
from jobs.context import RunContext
from jobs.pipeline import run_date
from jobs.progress import Progress
from jobs.silver import signals as sig
from jobs.silver import tagger_model
from jobs.silver.tagger import _FOLD_PY, NEGATION, vocabulary_rows
from jobs.silver.user_state import region_frame

TAGS = T.StructType(
    [
        T.StructField("topics", T.ArrayType(T.StringType())),
        T.StructField("sensitive", T.ArrayType(T.StringType())),
        T.StructField("negated", T.BooleanType()),
    ]
)


def vocabulary_tagger(cfg):
    """A Python function (text, language) -> (topics, sensitive, negated) over cfg's vocabulary."""
    index: dict[tuple[str, str, bool], list[tuple]] = {}
    for lang, topic, sensitive, tokens, prefix, key, key_is_prefix in vocabulary_rows(cfg):
        index.setdefault((lang, key, key_is_prefix), []).append((topic, sensitive, tokens, prefix))
    languages, window = list(cfg.languages), cfg.negation_window

    def tag(text, language):
        norm = re.sub(r"[^a-z0-9]+", " ", (text or "").lower().replace("ß", "ss").translate(_FOLD_PY)).strip()
        tokens = norm.split()
        matches = []
        for lang in [language] if language in languages else languages:
            for pos, token in enumerate(tokens):
                for entry in index.get((lang, token, False), []) + index.get((lang, token[:3], True), []):
                    topic, sensitive, terms, prefix = entry
                    if pos + len(terms) > len(tokens):
                        continue
                    words = tokens[pos : pos + len(terms)]
                    if all(w.startswith(t) if p else w == t for w, t, p in zip(words, terms, prefix)):
                        matches.append((topic, sensitive, pos, pos + len(terms) - 1))
        cues = [end for topic, _, _, end in matches if topic == NEGATION]
        topics = {
            topic
            for topic, sensitive, pos, _ in matches
            if topic != NEGATION and not sensitive and not any(end < pos and pos - end <= window for end in cues)
        }
        return sorted(topics), sorted({topic for topic, sensitive, _, _ in matches if sensitive}), bool(cues)

    return tag


def naive_tag_frame(cfg):
    """A drop-in for jobs.silver.signals.tag_frame whose vocabulary half is a Python UDF."""
    udf = F.udf(vocabulary_tagger(cfg), TAGS)

    def tag_frame(frame, id_col, text_col, lang_col, *, model, **_vocabulary_settings):
        language = F.col(lang_col) if lang_col else F.lit(None).cast("string")
        tagged = frame.select(F.col(id_col), udf(F.col(text_col), language).alias("v"))
        ml = model.predict(frame, id_col, text_col)
        either = lambda a, b: F.array_sort(F.array_distinct(F.concat(a, b)))  # noqa: E731
        return tagged.join(ml, on=id_col).select(
            id_col,
            either(
                F.col("v.topics"),
                F.when(F.col("v.negated"), F.array().cast("array<string>")).otherwise(F.col("ml_topics")),
            ).alias("topics"),
            either(F.col("v.sensitive"), F.col("ml_sensitive")).alias("sensitive"),
        )

    return tag_frame


@contextlib.contextmanager
def naive_choices(spark, cfg):
    """The product's code with the naive tagger and without broadcast joins, for the with-block."""
    saved = sig.tag_frame, F.broadcast, spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    sig.tag_frame, F.broadcast = naive_tag_frame(cfg), (lambda frame: frame)
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        yield
    finally:
        sig.tag_frame, F.broadcast = saved[0], saved[1]
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", saved[2])


def recompute_window(ctx: RunContext, first: dt.date, last: dt.date) -> None:
    """silver.daily_signals of first..last rebuilt from bronze in one pass (the naive team's "just
    recompute the window"): every chat turn and query of those dates tagged again."""
    spark, cfg = ctx.spark, ctx.cfg
    window = F.col("ingest_date").between(F.lit(first), F.lit(last))
    in_window = F.col("state_date").between(F.lit(first), F.lit(last))
    opted_out = ctx.read(t.USER_STATE).where(in_window & ~F.col("ai_chat_ads")).select("user_key").distinct()
    tagger = {"vocab": None, "model": tagger_model.load(cfg.tagger_model)}
    # ids made unique per date: the benchmark's copied history repeats a night's ids on every date
    dated = lambda id_col: F.concat_ws("@", id_col, "ingest_date").alias(id_col)  # noqa: E731
    turns = (
        ctx.read(t.CHAT_MESSAGES)
        .where(window & (F.col("role") == "user"))
        .withColumn("message_id", dated("message_id"))
    )
    tags = sig.tag_frame(turns, "message_id", "text", "language", **tagger)
    chat_rows, suppressed = sig.chat_topics(
        turns.select("message_id", "conversation_id", "user_key", "country", "ingest_date"),
        tags,
        region_frame(spark, cfg.country_region),
        sig.region_policy_frame(spark, cfg.regions),
        cfg.default_region,
        opted_out,
    )
    flagged = ctx.read(t.SENSITIVE_CONVERSATIONS).select("conversation_id").unionByName(suppressed)
    chat_rows = chat_rows.join(flagged, on="conversation_id", how="left_anti")
    events = ctx.read(t.ENGAGEMENT_EVENTS).where(window).withColumn("event_id", dated("event_id"))
    query_tags = sig.tag_frame(events.where(F.col("query_text").isNotNull()), "event_id", "query_text", None, **tagger)
    eng_rows = sig.engagement_topics(events, query_tags, [x.topic_id for x in cfg.targetable_topics])
    daily = sig.daily_signals(
        chat_rows, eng_rows, cfg.engagement_weights, cfg.chat_turn_weight, cfg.daily_cap_per_topic
    )
    daily.write.format("delta").mode("overwrite").partitionBy(*t.DAILY_SIGNALS.partition_by).option(
        "replaceWhere", f"signal_date >= '{first}' AND signal_date <= '{last}'"
    ).save(t.DAILY_SIGNALS.path(cfg.warehouse))


def naive_night(spark, cfg, day: dt.date) -> None:
    """The scoring window's earlier dates recomputed from bronze, then the night itself."""
    lookback = max(policy.lookback_days for policy in cfg.regions.values())
    with naive_choices(spark, cfg):
        ctx = RunContext.start(spark, cfg, day, Progress(quiet=True))
        recompute_window(ctx, day - dt.timedelta(days=lookback - 1), day - dt.timedelta(days=1))
        run_date(spark, cfg, day, Progress(quiet=True))
