"""Train the learned tagger from the labelled corpus (jobs/silver/tagger_corpus.py; `audience
train-tagger`, `make train-tagger`).

Corpus: every `*.jsonl` file of a folder, one {"id", "locale", "text", "topics", "sensitive"} per
line. Split once by a fixed rule on the id (split_of; `*.train.jsonl` files, whose texts tuned the
vocabulary, are train only): train fits the models, dev picks each label's threshold, test is only
reported. Nothing is random: the same corpus, settings and vocabulary give the same model and the
same version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import functions as F

from jobs import REPO_ROOT
from jobs.config import Config
from jobs.errors import AudienceError
from jobs.silver import tagger_model as tm
from jobs.silver.tagger import tag, vocabulary_frame, vocabulary_rows
from jobs.silver.tagger_corpus import SPLITS, label_sets, read_labelled, split_of
from jobs.silver.tagger_eval import score


@dataclass(frozen=True)
class Settings:
    num_features: int = 1 << 16
    char_ngrams: tuple[int, ...] = (4,)
    reg_param: float = 0.001
    max_iter: int = 100
    # A label's training rows weigh up to this many times a row of "none of them" (labels are rare).
    max_positive_weight: float = 10.0
    # Sensitive thresholds: recall first within a false-positive budget. The highest per-category
    # dev recall (vocabulary or model) in recall_targets whose thresholds keep the dev split's
    # share of clean messages flagged within max_false_positive_rate; topics maximise dev F1.
    recall_targets: tuple[float, ...] = (
        1.0,
        0.99,
        0.98,
        0.97,
        0.96,
        0.95,
        0.94,
        0.93,
        0.92,
        0.91,
        0.9,
        0.88,
        0.86,
        0.84,
        0.82,
        0.8,
    )
    max_false_positive_rate: float = 0.10


GRID = tuple(i / 1000 for i in range(1, 10)) + tuple(i / 100 for i in range(1, 100))


def version_of(records: list[dict], settings: Settings, vocabulary: list[tuple]) -> str:
    """A digest of the corpus, the settings, the feature code and the vocabulary (the thresholds
    are chosen together with what the vocabulary already finds)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(sorted(map(list, vocabulary)), ensure_ascii=False).encode("utf-8"))
    for r in records:
        digest.update(
            json.dumps([r["id"], r["text"], sorted(r["topics"]), sorted(r["sensitive"])], ensure_ascii=False).encode(
                "utf-8"
            )
        )
    digest.update(json.dumps(asdict(settings), sort_keys=True).encode("utf-8"))
    digest.update(tm.feature_sql(settings.char_ngrams).encode("utf-8"))
    return "tagger-" + digest.hexdigest()[:12]


def choose_thresholds(
    dev: dict[str, list[tuple[float, bool, bool]]], sensitive: list[str], clean: list[int], s: Settings
) -> tuple[dict[str, float], dict]:
    """dev: label -> per dev message (model probability, labelled, vocabulary found it), in the same
    message order for every label; clean: the indexes of messages without a sensitive label.
    Returns the thresholds and how the sensitive ones were chosen."""

    def hits(label, t):
        return [hit or p >= t for p, _, hit in dev[label]]

    def recall(label, t):
        pos = [h for h, (_, y, _) in zip(hits(label, t), dev[label]) if y]
        return sum(pos) / len(pos) if pos else 1.0

    thresholds = {}
    for label in set(dev) - set(sensitive):

        def f1(t, label=label):
            tp = sum(h and y for h, (_, y, _) in zip(hits(label, t), dev[label]))
            flagged, positives = sum(hits(label, t)), sum(y for _, y, _ in dev[label])
            return 2 * tp / (flagged + positives) if flagged + positives else 0.0

        thresholds[label] = max(GRID, key=lambda t: (f1(t), t))
    chosen = None
    for target in s.recall_targets:
        per_label = {l: max([t for t in GRID if recall(l, t) >= target - 1e-9], default=GRID[0]) for l in sensitive}
        found = [hits(l, per_label[l]) for l in sensitive]
        flagged = [any(h[i] for h in found) for i in clean]
        fpr = sum(flagged) / len(clean) if clean else 0.0
        chosen = (target, per_label, fpr)
        if fpr <= s.max_false_positive_rate:
            break
    target, per_label, fpr = chosen
    thresholds.update(per_label)
    return thresholds, {"dev_recall_target": target, "dev_false_positive_rate": round(fpr, 4)}


def train(spark, cfg: Config, corpus: Path, out_root: Path, settings: Settings = Settings(), progress=None) -> dict:
    """Fit, choose thresholds on dev, score dev and test through the full tagger, save. -> manifest."""
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import IDF, HashingTF, SQLTransformer
    from pyspark.ml.functions import vector_to_array

    sensitive, topics = label_sets(cfg)["sensitive"], label_sets(cfg)["topics"]
    records = read_labelled(cfg, corpus)
    version = version_of(records, settings, vocabulary_rows(cfg))
    by_split = {s: [r for r in records if r["split"] == s] for s in SPLITS}
    missing = [l for l in sensitive + topics if not any(l in r["sensitive"] | r["topics"] for r in by_split["train"])]
    if missing:
        raise AudienceError(f"the train split has no example of {missing}: add labelled messages")

    featurize = Pipeline(
        stages=[
            SQLTransformer(statement=tm.feature_sql(settings.char_ngrams)),
            HashingTF(inputCol="terms", outputCol="tf", numFeatures=settings.num_features, binary=True),
            IDF(inputCol="tf", outputCol="features", minDocFreq=2),
        ]
    ).fit(spark.createDataFrame([(r["id"], r["text"]) for r in by_split["train"]], "id string, text string"))
    dev_records = by_split["dev"]
    dev_x = (
        featurize.transform(
            spark.createDataFrame([(r["id"], r["text"]) for r in dev_records], "id string, text string")
        )
        .select("id", "features")
        .cache()
    )
    vocabulary = {r.id: set(r.topics) | set(r.sensitive) for r in tag_records(spark, cfg, None, dev_records).collect()}
    fitted, dev = [], {}
    for kind, classes in (("sensitive", sensitive), ("topics", topics)):
        # One multinomial model per head: class 0 is "none of them"; a message with several labels
        # gives one training row per label. Rare classes weigh up to max_positive_weight.
        rows = [(r["text"], classes.index(l) + 1.0) for r in by_split["train"] for l in sorted(r[kind])] + [
            (r["text"], 0.0) for r in by_split["train"] if not r[kind]
        ]
        counts = {c: sum(1 for _, y in rows if y == c) for c in range(len(classes) + 1)}
        weight = {c: min(counts[0] / max(n, 1), settings.max_positive_weight) if c else 1.0 for c, n in counts.items()}
        data = featurize.transform(
            spark.createDataFrame(
                [(t, y, float(weight[int(y)])) for t, y in rows], "text string, y double, w double"
            ).repartition(1)
        )
        lr = LogisticRegression(
            featuresCol="features",
            labelCol="y",
            weightCol="w",
            family="multinomial",
            regParam=settings.reg_param,
            maxIter=settings.max_iter,
            standardization=False,
            probabilityCol=tm.PROBABILITY_PREFIX + kind,
            rawPredictionCol="",
            predictionCol="",
        )
        fitted.append(lr.fit(data))
        probs = {
            r.id: r.p
            for r in fitted[-1]
            .transform(dev_x)
            .select("id", vector_to_array(tm.PROBABILITY_PREFIX + kind).alias("p"))
            .collect()
        }
        for i, label in enumerate(classes, 1):
            dev[label] = [(probs[r["id"]][i], label in r[kind], label in vocabulary[r["id"]]) for r in dev_records]
        if progress:
            progress(f"{kind}: {len(classes)} classes fitted on {len(rows):,} rows")
    clean = [i for i, r in enumerate(dev_records) if not r["sensitive"]]
    thresholds, choice = choose_thresholds(dev, sensitive, clean, settings)
    dev_x.unpersist()
    pipeline = PipelineModel(stages=featurize.stages + fitted)
    folder = Path(out_root) / version
    if folder.exists():
        shutil.rmtree(folder)
    pipeline.write().overwrite().save(str(folder / "pipeline"))
    manifest = {
        "version": version,
        "sensitive": sensitive,
        "topics": topics,
        "thresholds": thresholds,
        "settings": asdict(settings),
        "threshold_choice": choice,
        "corpus": _shown(corpus),
        "split_rule": split_of.__doc__,
        "messages": {s: len(p) for s, p in by_split.items()},
    }
    (folder / tm.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    model = tm.load(str(folder))
    for name in ("dev", "test"):
        manifest[f"{name}_scores"] = summary(evaluate(spark, cfg, model, by_split[name]))
    (folder / tm.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def _shown(path: Path) -> str:
    """path relative to the repository when inside it (the manifest is committed)."""
    path = Path(path).absolute()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def tag_records(spark, cfg: Config, model, records: list[dict]):
    """The nightly job's tagger (vocabulary or model) over {"id", "text", "locale"} records."""
    frame = spark.createDataFrame(
        [(str(r["id"]), r.get("text") or "", r.get("locale")) for r in records], "id string, text string, locale string"
    ).select("id", "text", F.lower(F.split("locale", "[-_]").getItem(0)).alias("language"))
    return tag(frame, vocabulary_frame(spark, cfg), cfg.languages, cfg.negation_window, id_col="id", model=model)


def evaluate(spark, cfg: Config, model, records: list[dict]) -> dict:
    """The full tagger over labelled records -> tagger_eval.score()."""
    predicted = {
        r.id: {"topics": set(r.topics), "sensitive": set(r.sensitive)}
        for r in tag_records(spark, cfg, model, records).collect()
    }
    expected = {r["id"]: {"topics": set(r["topics"]), "sensitive": set(r["sensitive"])} for r in records}
    return score(expected, predicted)


def summary(result: dict) -> dict:
    return {
        k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items() if k not in ("rows", "confusion")
    }
