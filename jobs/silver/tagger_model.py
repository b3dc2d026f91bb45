"""The learned half of the tagger: a Spark ML pipeline beside the vocabulary (no Python UDF).

text -> the tagger's normalisation -> word unigrams and bigrams plus character n-grams (4-grams by
default: 3- to 5-grams scored about the same and doubled the model's cost) of the padded text (a
SQLTransformer, so the model folder holds its own feature code) -> HashingTF -> IDF
-> two multinomial logistic regressions, one over the sensitive categories and one over the topics
(class 0: none of them), each label with its own probability threshold chosen on the dev split
(recall first for sensitive categories, F1 for topics). Two models rather than one per label: the
nightly cost is one pass over the features per model, and 36 binary models cost 8x the vocabulary.

A model is a versioned folder: `pipeline/` (the Spark PipelineModel) and `manifest.json` (version,
labels, thresholds, corpus and split counts, dev and test figures). The version is a digest of the
corpus and the training settings, so the same corpus and settings give the same version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.errors import AudienceError
from jobs.silver.tagger import FOLD_FROM, FOLD_TO

PROBABILITY_PREFIX = "p_"
MANIFEST = "manifest.json"


def _sql_string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def feature_sql(char_ngrams: tuple[int, ...]) -> str:
    """SQLTransformer statement: `text` -> `terms` (words, word bigrams, char n-grams of the
    normalised text). The same normalisation as the vocabulary's (tagger.normalize_col)."""
    norm = (
        f"trim(regexp_replace(translate(replace(lower(coalesce(text, '')), 'ß', 'ss'), "
        f"{_sql_string(FOLD_FROM)}, {_sql_string(FOLD_TO)}), '[^a-z0-9]+', ' '))"
    )
    bigrams = "transform(sequence(1, size(_w) - 1), i -> concat('b:', element_at(_w, i), ' ', element_at(_w, i + 1)))"
    # Overlapping character n-grams by a look-ahead regex (compiled Java, about twice as fast as a
    # SQL lambda over positions); their length tells them apart, words and bigrams carry a prefix.
    grams = ", ".join(f"regexp_extract_all(_p, '(?=(.{{{n}}}))', 1)" for n in char_ngrams)
    return (
        "SELECT *, concat(transform(_w, w -> concat('w:', w)), "
        f"IF(size(_w) > 1, {bigrams}, array()), {grams}) AS terms "
        "FROM (SELECT *, filter(split(_n, ' '), w -> w != '') AS _w, concat(' ', _n, ' ') AS _p "
        f"FROM (SELECT *, {norm} AS _n FROM __THIS__))"
    )


@dataclass(frozen=True)
class TaggerModel:
    path: Path
    version: str
    sensitive: tuple[str, ...]
    topics: tuple[str, ...]
    thresholds: dict
    pipeline: object  # pyspark.ml.PipelineModel

    def predict(self, frame: DataFrame, id_col: str, text_col: str) -> DataFrame:
        """frame(id, text) -> (id, ml_topics, ml_sensitive): the labels whose probability reaches
        their threshold (one multinomial model per head, one pass over the features)."""
        from pyspark.ml.functions import vector_to_array

        scored = self.pipeline.transform(frame.select(F.col(id_col), F.col(text_col).alias("text")))

        def said(head, labels):
            p = vector_to_array(F.col(PROBABILITY_PREFIX + head))
            return F.filter(
                F.array(*[F.when(p[i] >= F.lit(self.thresholds[l]), F.lit(l)) for i, l in enumerate(labels, 1)]),
                lambda x: x.isNotNull(),
            )

        return scored.select(
            id_col,
            said("topics", self.topics).alias("ml_topics"),
            said("sensitive", self.sensitive).alias("ml_sensitive"),
        )


def read_manifest(path: Path) -> dict:
    try:
        return json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AudienceError(
            f"tagger model {path}: cannot read {MANIFEST} ({exc}); train one with `audience train-tagger`"
        ) from None


def version_at(path: str) -> str:
    return read_manifest(Path(path))["version"]


@lru_cache(maxsize=4)
def load(path: str) -> TaggerModel:
    """The model folder at path (cached per process: loading costs a few Spark jobs)."""
    from pyspark.ml import PipelineModel

    manifest = read_manifest(Path(path))
    pipeline = PipelineModel.load(str(Path(path) / "pipeline"))
    return TaggerModel(
        Path(path),
        manifest["version"],
        tuple(manifest["sensitive"]),
        tuple(manifest["topics"]),
        manifest["thresholds"],
        pipeline,
    )
