import hashlib
import hmac

import pytest
from pyspark.sql import functions as F

from jobs.errors import AudienceError
from jobs.privacy.pii import DEV_KEY, KEY_ENV, hmac_sha256_hex, pseudonym_key, redact_pii


@pytest.mark.parametrize("key", [b"k", "clé-secrète".encode(), b"x" * 64, b"y" * 100])
def test_user_key_is_standard_hmac_sha256_of_utf8_user_id(spark, key):
    ids = ["u1", "ünïcødé-用户", "0", "a" * 300]
    rows = (
        spark.createDataFrame([(i,) for i in ids], "user_id string")
        .select("user_id", hmac_sha256_hex(F.col("user_id"), key).alias("user_key"))
        .collect()
    )
    assert {r.user_id: r.user_key for r in rows} == {
        i: hmac.new(key, i.encode("utf-8"), hashlib.sha256).hexdigest() for i in ids
    }


def _redact(spark, texts, country):
    frame = spark.createDataFrame([(t, country) for t in texts], "text string, country string")
    return [r.out for r in frame.select(redact_pii("text", "country").alias("out")).collect()]


@pytest.mark.parametrize(
    "text,country,expected",
    [
        ("write to jean.dupont+ads@mail.example.fr today", "FR", "write to [EMAIL] today"),
        ("appelle-moi au 06 12 34 56 78", "FR", "appelle-moi au [PHONE]"),
        ("appelle-moi au 06.12.34.56.78", "FR", "appelle-moi au [PHONE]"),
        ("mon numéro: +33 6 12 34 56 78.", "FR", "mon numéro: [PHONE]."),
        ("depuis la Suisse: 0033 6 12 34 56 78", "FR", "depuis la Suisse: [PHONE]"),
        ("ruf mich an 0151 23456789", "DE", "ruf mich an [PHONE]"),
        ("+49 (0)30 1234567 ist das Büro", "DE", "[PHONE] ist das Büro"),
        ("call (555) 123-4567 or 555.123.4567", "US", "call [PHONE] or [PHONE]"),
        ("my cell is 415 555 0132", "US", "my cell is [PHONE]"),
        ("appelle Tom à New York au 415 555 0132", "FR", "appelle Tom à New York au [PHONE]"),
        ("UK mobile +44 7700 900123", "GB", "UK mobile [PHONE]"),
        ("llámame al 612 345 678", "ES", "llámame al [PHONE]"),
        ("chiamami al 333 123 4567", "IT", "chiamami al [PHONE]"),
        ("zadzwoń +48 601 234 567", "PL", "zadzwoń [PHONE]"),
        # A mobile of another country, written as it is there, by a sender elsewhere.
        ("ruf Giulia an: 333 123 4567", "DE", "ruf Giulia an: [PHONE]"),
        ("el de Paula es 06 12 34 56 78", "ES", "el de Paula es [PHONE]"),
        ("text Jan on 0612345678", "GB", "text Jan on [PHONE]"),
        ("numer Kasi w Berlinie 0151 23456789", "PL", "numer Kasi w Berlinie [PHONE]"),
        ("card 4111 1111 1111 1111 please", "US", "card [CARD] please"),
        ("card 4111 1111 1111 1111 12/27 cvv 123", "US", "card [CARD] 12/27 cvv 123"),
        ("carte 4111.1111.1111.1111", "FR", "carte [CARD]"),
        ("amex 3782-822463-10005", "US", "amex [CARD]"),
        ("IBAN FR76 3000 6000 0112 3456 7890 189 merci", "FR", "IBAN [IBAN] merci"),
        ("pay NL91ABNA0417164300 now", "NL", "pay [IBAN] now"),
    ],
)
def test_pii_is_replaced_by_placeholders(spark, text, country, expected):
    assert _redact(spark, [text], country) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "order #48213377 shipped",
        "invoice 2025-118734 total 1 299,00 €",
        "see you on 16/12/2025 at 10:30",
        "the date is 2025-12-16",
        "not a card: 4111 1111 1111 1112",  # fails the Luhn check
        "not an IBAN: DE88 3704 0044 0532 0130 00",  # fails mod-97
        "tracking 0012345678",
        "ISBN 978-3-16-148410-0",
        "we were 25 people, 3 cars and 12 bikes",
        "version 4.1.4 of pyspark",
    ],
)
def test_look_alikes_survive_redaction(spark, text):
    assert _redact(spark, [text], "DE") == [text]


def test_adversarial_corpus_is_redacted_without_false_positives(spark):
    """tests/pii_corpus.jsonl: 290 labelled messages in the 8 languages' countries plus US/UK,
    written apart from the code. Every value must go, every look-alike must stay."""
    import json
    from pathlib import Path

    from jobs.privacy.pii_eval import redact_records, score

    records = [json.loads(line) for line in (Path(__file__).parent / "pii_corpus.jsonl").open(encoding="utf-8")]
    assert len(records) >= 200
    result = score(records, redact_records(spark, records))
    by_kind = {r["kind"]: r for r in result["rows"]}
    assert set(by_kind) == {"email", "phone", "card", "iban", "none"}
    assert {k: r["recall"] for k, r in by_kind.items() if k != "none"} == {
        "email": 1.0,
        "phone": 1.0,
        "card": 1.0,
        "iban": 1.0,
    }, result["misses"]
    assert by_kind["none"]["false_positives"] == 0, result["misses"]["none"]


def test_dev_key_only_where_profile_allows(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert pseudonym_key(allow_dev_key=True) == DEV_KEY.encode()
    with pytest.raises(AudienceError, match=KEY_ENV):
        pseudonym_key(allow_dev_key=False)
    monkeypatch.setenv(KEY_ENV, DEV_KEY)
    with pytest.raises(AudienceError):
        pseudonym_key(allow_dev_key=False)
    monkeypatch.setenv(KEY_ENV, "a-real-secret")
    assert pseudonym_key(allow_dev_key=False) == b"a-real-secret"
