import hashlib
import hmac

import pytest
from pyspark.sql import functions as F

from jobs.errors import AudienceError
from jobs.privacy import DEV_KEY, KEY_ENV, hmac_sha256_hex, pseudonym_key, redact_pii


@pytest.mark.parametrize("key", [b"k", "clé-secrète".encode(), b"x" * 64, b"y" * 100])
def test_user_key_is_standard_hmac_sha256_of_utf8_user_id(spark, key):
    ids = ["u1", "ünïcødé-用户", "0", "a" * 300]
    rows = (spark.createDataFrame([(i,) for i in ids], "user_id string")
            .select("user_id", hmac_sha256_hex(F.col("user_id"), key).alias("user_key")).collect())
    assert {r.user_id: r.user_key for r in rows} == {
        i: hmac.new(key, i.encode("utf-8"), hashlib.sha256).hexdigest() for i in ids}


def _redact(spark, texts):
    frame = spark.createDataFrame([(t,) for t in texts], "text string")
    return [r.out for r in frame.select(redact_pii(F.col("text")).alias("out")).collect()]


@pytest.mark.parametrize("text,expected", [
    ("write to jean.dupont+ads@mail.example.fr today", "write to [EMAIL] today"),
    ("appelle-moi au 06 12 34 56 78", "appelle-moi au [PHONE]"),
    ("mon numéro: +33 6 12 34 56 78.", "mon numéro: [PHONE]."),
    ("ruf mich an 0151 23456789", "ruf mich an [PHONE]"),
    ("+49 (0)30 1234567 ist das Büro", "[PHONE] ist das Büro"),
    ("call (555) 123-4567 or 555.123.4567", "call [PHONE] or [PHONE]"),
    ("UK mobile +44 7700 900123", "UK mobile [PHONE]"),
    ("llámame al 612 345 678", "llámame al [PHONE]"),
    ("chiamami al 333 123 4567", "chiamami al [PHONE]"),
    ("zadzwoń +48 601 234 567", "zadzwoń [PHONE]"),
    ("card 4111 1111 1111 1111 please", "card [CARD] please"),
    ("amex 3782-822463-10005", "amex [CARD]"),
    ("IBAN FR76 3000 6000 0112 3456 7890 189 merci", "IBAN [IBAN] merci"),
    ("pay NL91ABNA0417164300 now", "pay [IBAN] now"),
])
def test_pii_is_replaced_by_placeholders(spark, text, expected):
    assert _redact(spark, [text]) == [expected]


@pytest.mark.parametrize("text", [
    "order #48213377 shipped",
    "invoice 2025-118734 total 1 299,00 €",
    "see you on 16/12/2025 at 10:30",
    "the date is 2025-12-16",
    "not a card: 4111 1111 1111 1112",  # fails the Luhn check
    "tracking 0012345678",
    "we were 25 people, 3 cars and 12 bikes",
    "version 4.1.4 of pyspark",
])
def test_look_alikes_survive_redaction(spark, text):
    assert _redact(spark, [text]) == [text]


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
