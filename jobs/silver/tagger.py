"""Topic and sensitive-category tagger as native Spark over a broadcast vocabulary (no UDF).

text -> normalised tokens (lower case, accents folded, punctuation to spaces) -> posexplode ->
broadcast join with the vocabulary on the first token (exact words, and 3-letter keys for `stem*`
terms) -> the rest of multi-word terms checked on the token array -> per-message topics.
Negation: a topic term within `negation.window` tokens after a cue ("can't stand", "je déteste")
does not count. Sensitive categories ignore negation: "I'm not religious" is still a sensitive turn.
The message's language picks the vocabulary; an unknown language is matched against all of them.
"""

from __future__ import annotations

import unicodedata

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.config import Config

NEGATION = "__negation__"
PREFIX_KEY_LEN = 3


def _fold_table() -> tuple[str, str]:
    src, dst = [], []
    for code in range(0xC0, 0x250):
        ch = chr(code).lower()
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if len(ch) == 1 and ch not in src and len(base) == 1 and base.isascii() and base != ch:
            src.append(ch)
            dst.append(base)
    for ch, base in (("ł", "l"), ("ø", "o"), ("đ", "d")):
        if ch not in src:
            src.append(ch)
            dst.append(base)
    return "".join(src), "".join(dst)


FOLD_FROM, FOLD_TO = _fold_table()
_FOLD_PY = str.maketrans(FOLD_FROM, FOLD_TO)


def normalize_py(text: str) -> str:
    """Python twin of normalize_col, for the vocabulary (same table, same steps)."""
    import re

    out = text.lower().replace("ß", "ss").translate(_FOLD_PY)
    return re.sub(r"[^a-z0-9*]+", " ", out).strip()


def normalize_col(text: Column) -> Column:
    out = F.translate(F.replace(F.lower(text), F.lit("ß"), F.lit("ss")), FOLD_FROM, FOLD_TO)
    return F.trim(F.regexp_replace(out, r"[^a-z0-9]+", " "))


def vocabulary_rows(cfg: Config) -> list[tuple]:
    """(lang, topic, sensitive, tokens, prefix_flags, join_key, key_is_prefix) per term."""
    rows = []

    def add(lang, topic, sensitive, term):
        tokens = normalize_py(term).split()
        if not tokens:
            return
        prefix = [t.endswith("*") and len(t.rstrip("*")) >= PREFIX_KEY_LEN for t in tokens]
        tokens = [t.rstrip("*") for t in tokens]
        key = tokens[0][:PREFIX_KEY_LEN] if prefix[0] else tokens[0]
        rows.append((lang, topic, sensitive, tokens, prefix, key, prefix[0]))

    for topic in cfg.topics.values():
        for lang, terms in topic.vocab.items():
            for term in terms:
                add(lang, topic.topic_id, topic.sensitive, term)
    for lang, cues in cfg.negation_cues.items():
        for cue in cues:
            add(lang, NEGATION, False, cue)
    return rows


VOCAB_SCHEMA = T.StructType(
    [
        T.StructField("v_lang", T.StringType()),
        T.StructField("topic", T.StringType()),
        T.StructField("sensitive", T.BooleanType()),
        T.StructField("v_tokens", T.ArrayType(T.StringType())),
        T.StructField("v_prefix", T.ArrayType(T.BooleanType())),
        T.StructField("v_key", T.StringType()),
        T.StructField("v_key_is_prefix", T.BooleanType()),
    ]
)


def vocabulary_frame(spark: SparkSession, cfg: Config) -> DataFrame:
    return spark.createDataFrame(vocabulary_rows(cfg), VOCAB_SCHEMA)


def tag(
    messages: DataFrame,
    vocab: DataFrame,
    languages: list[str],
    negation_window: int,
    id_col: str = "message_id",
    text_col: str = "text",
    lang_col: str = "language",
    model=None,
) -> DataFrame:
    """messages(id, text, language, ...) -> (id, topics array, sensitive array); every input id once.

    With a learned model (tagger_model.TaggerModel), a category is sensitive when the vocabulary or
    the model says so, and a topic counts when the vocabulary finds it, or the model does in a
    message without any negation cue (the vocabulary alone knows what a cue negates)."""
    langs = F.array(*[F.lit(l) for l in languages])
    prepared = messages.select(
        F.col(id_col).alias("_id"),
        F.split(normalize_col(F.col(text_col)), " ").alias("tokens"),
        F.explode(F.when(F.col(lang_col).isin(*languages), F.array(F.col(lang_col))).otherwise(langs)).alias(
            "match_lang"
        ),
    )
    exploded = prepared.select("_id", "match_lang", "tokens", F.posexplode("tokens").alias("pos", "token"))
    exploded = exploded.where(F.length("token") > 0)
    exact_vocab = vocab.where(~F.col("v_key_is_prefix"))
    prefix_vocab = vocab.where(F.col("v_key_is_prefix"))
    exact = exploded.join(
        F.broadcast(exact_vocab),
        (F.col("token") == F.col("v_key")) & (F.col("match_lang") == F.col("v_lang")),
        how="inner",
    )
    prefix = exploded.join(
        F.broadcast(prefix_vocab),
        (F.substring("token", 1, PREFIX_KEY_LEN) == F.col("v_key")) & (F.col("match_lang") == F.col("v_lang")),
        how="inner",
    )
    n = F.size("v_tokens")
    full_match = F.forall(
        F.sequence(F.lit(0), n - 1),
        lambda i: F.coalesce(
            F.when(
                F.element_at("v_prefix", i + 1),
                F.startswith(F.element_at("tokens", F.col("pos") + i + 1), F.element_at("v_tokens", i + 1)),
            ).otherwise(F.element_at("tokens", F.col("pos") + i + 1) == F.element_at("v_tokens", i + 1)),
            F.lit(False),
        ),
    )
    matches = (
        exact.unionByName(prefix)
        .where((F.col("pos") + n <= F.size("tokens")) & full_match)
        .select("_id", "topic", "sensitive", F.col("pos"), (F.col("pos") + n - 1).alias("end"))
    )
    per_message = matches.groupBy("_id").agg(
        F.collect_list(F.struct("topic", "sensitive", "pos", "end")).alias("m"),
        F.max(F.col("topic") == NEGATION).alias("negated"),
    )
    cues = lambda m: F.filter(m, lambda x: x["topic"] == NEGATION)  # noqa: E731
    topics = F.array_sort(
        F.array_distinct(
            F.transform(
                F.filter(
                    F.col("m"),
                    lambda x: (
                        (x["topic"] != NEGATION)
                        & ~x["sensitive"]
                        & ~F.exists(
                            cues(F.col("m")), lambda c: (c["end"] < x["pos"]) & (x["pos"] - c["end"] <= negation_window)
                        )
                    ),
                ),
                lambda x: x["topic"],
            )
        )
    )
    sensitive = F.array_sort(
        F.array_distinct(F.transform(F.filter(F.col("m"), lambda x: x["sensitive"]), lambda x: x["topic"]))
    )
    tagged = per_message.select("_id", topics.alias("topics"), sensitive.alias("sensitive"), "negated")
    empty = F.array().cast("array<string>")
    if model is None:
        ids = messages.select(F.col(id_col).alias("_id")).distinct()
        ml_topics = ml_sensitive = empty
    else:
        ids = model.predict(messages, id_col, text_col).withColumnRenamed(id_col, "_id").dropDuplicates(["_id"])
        ml_topics, ml_sensitive = F.col("ml_topics"), F.col("ml_sensitive")
    either = lambda a, b: F.array_sort(F.array_distinct(F.concat(F.coalesce(a, empty), b)))  # noqa: E731
    return ids.join(tagged, on="_id", how="left").select(
        F.col("_id").alias(id_col),
        either(F.col("topics"), F.when(F.coalesce("negated", F.lit(False)), empty).otherwise(ml_topics)).alias(
            "topics"
        ),
        either(F.col("sensitive"), ml_sensitive).alias("sensitive"),
    )
