"""Tagger behaviour on inline messages, plus a quality floor on the labelled evaluation set."""
import json

import pytest

from jobs.config import load_config
from jobs.silver.tagger import normalize_py, tag, vocabulary_frame
from jobs.silver.tagger_eval import score
from jobs import REPO_ROOT


@pytest.fixture(scope="module")
def cfg():
    return load_config(profile="test")


@pytest.fixture(scope="module")
def tagger(spark, cfg):
    vocab = vocabulary_frame(spark, cfg).cache()
    def run(rows):
        frame = spark.createDataFrame(rows, "message_id string, text string, language string")
        return {r.message_id: (list(r.topics), list(r.sensitive))
                for r in tag(frame, vocab, cfg.languages, cfg.negation_window).collect()}
    return run


def test_normalisation_folds_case_accents_and_punctuation():
    assert normalize_py("Fußball-WM: Ça VA, ŁÓDŹ!") == "fussball wm ca va lodz"


@pytest.mark.parametrize("text,language,topics", [
    ("Ich suche Laufschuhe für den Halbmarathon", "de", ["running"]),          # compounds via stems
    ("FUSSBALL am Wochenende", "de", ["football"]),
    ("un billet d'avion pour Lisbonne", "fr", ["travel"]),                     # phrase with apostrophe
    ("wędrówki po Tatrach", "pl", ["hiking_outdoors"]),                         # accents folded
    ("hello, how are you", "en", []),
    ("a trip to Lisbon with my dog", None, ["pets", "travel"]),                 # unknown language: all vocabularies
])
def test_topics_found_in_natural_text(tagger, text, language, topics):
    assert tagger([("m", text, language)])["m"] == (topics, [])


@pytest.mark.parametrize("text,language", [
    ("I can't stand football", "en"),
    ("honestly I'm not into video games", "en"),
    ("je déteste le foot", "fr"),
    ("ich hasse Fußball", "de"),
    ("no me gusta nada el fútbol", "es"),
])
def test_negated_preferences_do_not_count(tagger, text, language):
    assert tagger([("m", text, language)])["m"] == ([], [])


def test_negation_covers_only_a_few_words_after_the_cue(tagger):
    topics, _ = tagger([("m", "I hate mornings but after a long day of work I love my road bike", "en")])["m"]
    assert topics == ["cycling"]


def test_sensitive_categories_are_found_even_when_negated(tagger):
    result = tagger([("a", "I'm not religious but I pray sometimes", "en"),
                     ("b", "mon médecin parle de diabète", "fr")])
    assert result["a"][1] == ["religion"] and result["b"][1] == ["health"]


def test_every_message_gets_one_output_row(tagger):
    assert set(tagger([("a", "", "en"), ("b", "   ", "fr"), ("c", "tennis", "xx")])) == {"a", "b", "c"}


def test_quality_floor_on_the_labelled_multilingual_set(spark, cfg):
    """300+ messages in 8 languages, written apart from the generator's templates.
    Sensitive recall matters most: a missed sensitive message is a legal breach."""
    records = [json.loads(line) for line in (REPO_ROOT / "benchmarks" / "tagger_eval.jsonl").open(encoding="utf-8")]
    assert len(records) >= 300 and len({r["locale"] for r in records}) == 8
    frame = spark.createDataFrame([(r["id"], r["text"], r["locale"][:2]) for r in records],
                                  "message_id string, text string, language string")
    got = {r.message_id: {"topics": set(r.topics), "sensitive": set(r.sensitive)}
           for r in tag(frame, vocabulary_frame(spark, cfg), cfg.languages, cfg.negation_window).collect()}
    result = score({r["id"]: {"topics": set(r["topics"]), "sensitive": set(r["sensitive"])} for r in records}, got)
    assert result["sensitive_message_recall"] >= 0.95
    assert result["topic_recall"] >= 0.9 and result["topic_precision"] >= 0.85


def test_score_counts_true_and_false_positives_per_label():
    expected = {"1": {"topics": {"travel"}, "sensitive": set()}, "2": {"topics": set(), "sensitive": {"health"}}}
    predicted = {"1": {"topics": {"travel", "pets"}, "sensitive": set()}, "2": {"topics": set(), "sensitive": set()}}
    result = score(expected, predicted)
    rows = {r["label"]: r for r in result["rows"]}
    assert (rows["travel"]["tp"], rows["pets"]["fp"], rows["health"]["fn"]) == (1, 1, 1)
    assert result["sensitive_message_recall"] == 0.0 and result["topic_precision"] == 0.5
