"""Pseudonymization and PII redaction as native Spark expressions (no Python UDF).

user_key = lowercase hex HMAC-SHA256(key, UTF-8 user_id), composed from sha2/unhex with the key
XOR ipad/opad (RFC 2104), so it runs in the JVM at column speed.
"""
from __future__ import annotations

import hashlib
import logging
import os

from pyspark.sql import Column, functions as F

from jobs.errors import AudienceError

log = logging.getLogger(__name__)
KEY_ENV = "AUDIENCE_PSEUDONYM_KEY"
# Set by the Airflow DAGs from the masked Variable `audience_pseudonym_secret`: used when the
# worker's own environment does not carry KEY_ENV.
AIRFLOW_KEY_ENV = "AUDIENCE_PSEUDONYM_KEY_AIRFLOW"
# Used only by profiles that allow it (local, test); any other profile refuses to run with it.
DEV_KEY = "dev-only-pseudonym-key-not-a-secret"
_BLOCK = 64


def pseudonym_key(allow_dev_key: bool) -> bytes:
    """The HMAC key from the environment; the development key only where the profile allows it."""
    key = os.environ.get(KEY_ENV) or os.environ.get(AIRFLOW_KEY_ENV, "")
    if key and key != DEV_KEY:
        return key.encode("utf-8")
    if allow_dev_key:
        log.warning("%s is not set: using the development key (local profile only)", KEY_ENV)
        return DEV_KEY.encode("utf-8")
    raise AudienceError(f"{KEY_ENV} must be set to the real pseudonymization key in this profile "
                        "(the development key is refused outside local and test)")


def hmac_sha256_hex(message: Column, key: bytes) -> Column:
    """Column of lowercase hex HMAC-SHA256(key, UTF-8 bytes of message)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    ipad = F.lit(bytearray(b ^ 0x36 for b in key))
    opad = F.lit(bytearray(b ^ 0x5C for b in key))
    inner = F.unhex(F.sha2(F.concat(ipad, message.cast("binary")), 256))
    return F.sha2(F.concat(opad, inner), 256)


# --- PII redaction -------------------------------------------------------------------------------
EMAIL_RE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
IBAN_RE = r"(?i)\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b"
CARD_CANDIDATE_RE = r"\b[0-9](?:[ -]?[0-9]){12,18}\b"
PHONE_RE = "|".join([
    r"\+[1-9][0-9]{0,2}[ .-]?(?:\(0\)[ .-]?)?(?:[0-9][ .-]?){6,13}[0-9]",  # international, +CC ...
    r"\(\d{3}\)[ ]?\d{3}[-. ]\d{4}\b",                                    # US (555) 123-4567
    r"\b\d{3}[-.]\d{3}[-.]\d{4}\b",                                        # US 555-123-4567
    r"\b0[1-9](?:[ .-]?\d{2}){4}\b",                                       # FR 06 12 34 56 78
    r"\b0[1-9]\d{1,3}[ /-]?\d{3,4}[ -]?\d{3,4}\b",                         # DE/UK/NL/IT 0151 23456789
    r"\b[5-9]\d{2}[ -]\d{3}[ -]\d{3}\b",                                    # ES/PL mobiles 612 345 678
    r"\b3\d{2}[ -]\d{3}[ -]\d{3,4}\b",                                      # IT mobiles 333 123 4567
])
PLACEHOLDERS = {"email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "phone": "[PHONE]"}


def _luhn_valid(candidate: Column) -> Column:
    digits = F.split(F.regexp_replace(candidate, r"[^0-9]", ""), "")
    reversed_digits = F.transform(F.reverse(digits), lambda d: d.cast("int"))
    doubled = F.transform(
        reversed_digits,
        lambda d, i: F.when(i % 2 == 1, F.when(d * 2 > 9, d * 2 - 9).otherwise(d * 2)).otherwise(d),
    )
    total = F.aggregate(doubled, F.lit(0), lambda acc, d: acc + d)
    return (F.size(digits) >= 13) & (F.size(digits) <= 19) & (total % 10 == 0)


def redact_pii(text: Column) -> Column:
    """Replace emails, IBANs, Luhn-valid card numbers and phone numbers by placeholders.

    Order matters: IBANs and cards are digit runs a phone pattern could partly eat.
    Look-alikes survive: order numbers, dates, prices, and digit runs failing the Luhn check.
    """
    out = F.regexp_replace(text, EMAIL_RE, PLACEHOLDERS["email"])
    out = F.regexp_replace(out, IBAN_RE, PLACEHOLDERS["iban"])
    cards = F.filter(F.regexp_extract_all(out, F.lit(CARD_CANDIDATE_RE), 0), _luhn_valid)
    out = F.aggregate(cards, out, lambda acc, card: F.replace(acc, card, F.lit(PLACEHOLDERS["card"])))
    return F.regexp_replace(out, PHONE_RE, PLACEHOLDERS["phone"])


def pii_kinds(original: Column, redacted: Column) -> Column:
    """Which placeholder kinds redaction introduced (array of strings), for counting; no values."""
    kinds = [F.when(F.locate(p, redacted) > F.locate(p, original), F.lit(k))
             for k, p in PLACEHOLDERS.items()]
    return F.filter(F.array(*kinds), lambda k: k.isNotNull())
