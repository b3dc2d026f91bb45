"""Tagger behaviour on inline messages, plus a quality floor on the labelled evaluation set."""

import json

import pytest

from jobs import REPO_ROOT
from jobs.errors import AudienceError
from jobs.silver import tagger_model
from jobs.silver.tagger import normalize_py, tag, vocabulary_frame
from jobs.silver.tagger_corpus import read_labelled
from jobs.silver.tagger_eval import score
from jobs.silver.tagger_train import Settings, evaluate, tag_records, train

# What the configured model measured on the test split when it was trained (models/tagger/*/
# manifest.json), rounded down (the ceiling up): a change that makes detection worse fails here.
SENSITIVE_RECALL_FLOOR = 0.92
FALSE_POSITIVE_CEILING = 0.18
TOPIC_F1_FLOOR = 0.62


@pytest.fixture(scope="module")
def tagger(spark, cfg):
    vocab = vocabulary_frame(spark, cfg).cache()

    def run(rows):
        frame = spark.createDataFrame(rows, "message_id string, text string, language string")
        return {
            r.message_id: (list(r.topics), list(r.sensitive))
            for r in tag(frame, vocab, cfg.languages, cfg.negation_window).collect()
        }

    return run


def test_normalisation_folds_case_accents_and_punctuation():
    assert normalize_py("Fußball-WM: Ça VA, ŁÓDŹ!") == "fussball wm ca va lodz"


@pytest.mark.parametrize(
    "text,language,topics",
    [
        ("Ich suche Laufschuhe für den Halbmarathon", "de", ["running"]),  # compounds via stems
        ("FUSSBALL am Wochenende", "de", ["football"]),
        ("un billet d'avion pour Lisbonne", "fr", ["travel"]),  # phrase with apostrophe
        ("wędrówki po Tatrach", "pl", ["hiking_outdoors"]),  # accents folded
        ("hello, how are you", "en", []),
        ("a trip to Lisbon with my dog", None, ["pets", "travel"]),  # unknown language: all vocabularies
    ],
)
def test_topics_found_in_natural_text(tagger, text, language, topics):
    assert tagger([("m", text, language)])["m"] == (topics, [])


@pytest.mark.parametrize(
    "text,language",
    [
        ("I can't stand football", "en"),
        ("honestly I'm not into video games", "en"),
        ("je déteste le foot", "fr"),
        ("ich hasse Fußball", "de"),
        ("no me gusta nada el fútbol", "es"),
    ],
)
def test_negated_preferences_do_not_count(tagger, text, language):
    assert tagger([("m", text, language)])["m"] == ([], [])


def test_negation_covers_only_a_few_words_after_the_cue(tagger):
    topics, _ = tagger([("m", "I hate mornings but after a long day of work I love my road bike", "en")])["m"]
    assert topics == ["cycling"]


def test_sensitive_categories_are_found_even_when_negated(tagger):
    result = tagger(
        [("a", "I'm not religious but I pray sometimes", "en"), ("b", "mon médecin parle de diabète", "fr")]
    )
    assert result["a"][1] == ["religion"] and result["b"][1] == ["health"]


def test_every_message_gets_one_output_row(tagger):
    assert set(tagger([("a", "", "en"), ("b", "   ", "fr"), ("c", "tennis", "xx")])) == {"a", "b", "c"}


CORPUS = REPO_ROOT / "models" / "tagger_corpus"


def test_the_corpus_covers_every_language_and_label_in_every_split(cfg):
    records = read_labelled(cfg, CORPUS)
    assert len(records) >= 3000
    assert {r["locale"][:2] for r in records} == set(cfg.languages)
    for split in ("train", "dev", "test"):
        part = [r for r in records if r["split"] == split]
        for lang in cfg.languages:
            assert sum(r["locale"].startswith(lang) for r in part) >= 30, (split, lang)
        labels = {l for r in part for l in r["topics"] | r["sensitive"]}
        assert labels == set(cfg.topics), (split, sorted(set(cfg.topics) - labels))


def test_a_corpus_line_with_an_unknown_label_is_a_clear_error(cfg, tmp_path):
    (tmp_path / "x.jsonl").write_text(
        '{"id": "a", "locale": "en-GB", "text": "hi", "topics": [], "sensitive": ["healht"]}\n'
    )
    with pytest.raises(AudienceError, match=r"x.jsonl:1: unknown sensitive \['healht'\]"):
        read_labelled(cfg, tmp_path)


def test_the_configured_model_meets_its_floor_on_the_test_split(spark, cfg):
    """The test split (never used for tuning) through the nightly job's tagger, vocabulary or model.
    Sensitive recall matters most: a missed sensitive message is a legal breach."""
    result = evaluate(spark, cfg, tagger_model.load(cfg.tagger_model), read_labelled(cfg, CORPUS, "test"))
    assert result["sensitive_message_recall"] >= SENSITIVE_RECALL_FLOOR
    assert result["sensitive_false_positive_rate"] <= FALSE_POSITIVE_CEILING
    assert result["topic_micro_f1"] >= TOPIC_F1_FLOOR


def test_training_gives_the_same_model_for_the_same_corpus(spark, cfg, tmp_path):
    """Re-training on an unchanged corpus yields the same version, thresholds and answers."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    records = read_labelled(cfg, CORPUS)
    # the first messages of each label, so every label has train examples, kept small for speed
    keep, seen = [], {}
    for r in records:
        labels = r["topics"] | r["sensitive"] or {"(none)"}
        if any(seen.get(l, 0) < 6 for l in labels):
            keep.append(r)
            for l in labels:
                seen[l] = seen.get(l, 0) + 1
    (corpus / "part.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "id": r["id"],
                    "locale": r["locale"],
                    "text": r["text"],
                    "topics": sorted(r["topics"]),
                    "sensitive": sorted(r["sensitive"]),
                },
                ensure_ascii=False,
            )
            + "\n"
            for r in keep
        ),
        encoding="utf-8",
    )
    small = Settings(num_features=1 << 12, max_iter=5)
    first = train(spark, cfg, corpus, tmp_path / "a", small)
    second = train(spark, cfg, corpus, tmp_path / "b", small)
    assert first["version"] == second["version"] and first["thresholds"] == second["thresholds"]
    texts = [{"id": r["id"], "text": r["text"], "locale": r["locale"]} for r in records[:200]]
    answers = [
        sorted(map(tuple, tag_records(spark, cfg, tagger_model.load(str(root / first["version"])), texts).collect()))
        for root in (tmp_path / "a", tmp_path / "b")
    ]
    assert answers[0] == answers[1]


def test_score_counts_true_and_false_positives_per_label():
    expected = {"1": {"topics": {"travel"}, "sensitive": set()}, "2": {"topics": set(), "sensitive": {"health"}}}
    predicted = {"1": {"topics": {"travel", "pets"}, "sensitive": set()}, "2": {"topics": set(), "sensitive": set()}}
    result = score(expected, predicted)
    rows = {r["label"]: r for r in result["rows"]}
    assert (rows["travel"]["tp"], rows["pets"]["fp"], rows["health"]["fn"]) == (1, 1, 1)
    assert result["sensitive_message_recall"] == 0.0 and result["topic_precision"] == 0.5
    assert result["confusion"] == {("(none)", "(none)"): 1, ("health", "(none)"): 1}
