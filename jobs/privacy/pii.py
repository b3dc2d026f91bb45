"""Pseudonymization and PII redaction as native Spark expressions (no Python UDF).

user_key = lowercase hex HMAC-SHA256(key, UTF-8 user_id), composed from sha2/unhex with the key
XOR ipad/opad (RFC 2104), so it runs in the JVM at column speed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.errors import AudienceError
from jobs.io import sql_literal

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
    raise AudienceError(
        f"{KEY_ENV} must be set to the real pseudonymization key in this profile "
        "(the development key is refused outside local and test)"
    )


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
# Emails, IBANs (ISO 13616 mod-97) and cards (Luhn) are found and checked natively. Phone numbers
# are recognised by Google's libphonenumber (`phonenumbers`) with the sender's country as the
# region (mobiles: every supported country), on the few texts a native prefilter finds a run of
# 7+ digits in (a vectorized UDF that receives null for every other row).
EMAIL_RE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
IBAN_CANDIDATE_RE = r"(?i)\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"
# 4-4-4-4(-3) with one separator kind (space, dash, dot or none), Amex 4-6-5, or 13-19 digits.
CARD_CANDIDATE_RE = (
    r"(?<![0-9+])(?:[0-9]{4}([ .-]?)[0-9]{4}\1[0-9]{4}\1[0-9]{4}(?:\1[0-9]{3})?"
    r"|[0-9]{4}([ .-]?)[0-9]{6}\2[0-9]{5}|[0-9]{13,19})(?![0-9])"
)
PHONE_CANDIDATE_RE = r"[0-9](?:[ ./()-]{0,3}[0-9]){6,}"
# North-American numbers however the sender's country reads them (a US number typed by a French
# user), and area codes libphonenumber rejects (555 and fictional ranges): (AAA) EEE-NNNN,
# AAA-EEE-NNNN, AAA.EEE.NNNN, AAA EEE NNNN (area and exchange codes start with 2-9).
US_STYLE_RE = (
    r"\(\d{3}\)[ ]?\d{3}[-. ]\d{4}\b|\b\d{3}[-.]\d{3}[-.]\d{4}\b"
    r"|(?<![0-9][ .-]?)\b[2-9]\d{2} [2-9]\d{2} \d{4}\b(?![ .-]?[0-9])"
)
# Regions tried when a row has no valid country (quarantined rows): over-redaction is the safe side.
FALLBACK_REGIONS = ("US", "GB", "FR", "DE", "ES", "IT", "PT", "NL", "PL", "BE", "AT", "CH", "IE")
PLACEHOLDERS = {"email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "phone": "[PHONE]"}


# The native part of redaction is SQL text, parsed once per call by the JVM: built from Column
# functions with lambdas, it cost about 2,000 py4j round trips per redacted field (0.2-0.4 s each
# time an ingest builds it, about 10 fields a night).
def _luhn_valid(c: str) -> str:
    """Luhn check of the digits of candidate `c` (SQL)."""
    digits = f"split(regexp_replace({c}, '[^0-9]', ''), '')"
    doubled = (
        f"transform(reverse(transform({digits}, d -> CAST(d AS INT))), "
        "(d, i) -> CASE WHEN i % 2 = 1 THEN CASE WHEN d * 2 > 9 THEN d * 2 - 9 ELSE d * 2 END ELSE d END)"
    )
    return f"(size({digits}) BETWEEN 13 AND 19 AND aggregate({doubled}, 0, (acc, d) -> acc + d) % 10 = 0)"


def _iban_valid(c: str) -> str:
    """ISO 13616 (SQL): first four characters moved to the end, letters as 10..35, the number mod 97 is 1."""
    compact = f"upper(regexp_replace({c}, ' ', ''))"
    remainder = (
        f"aggregate(split(concat(substring({compact}, 5, 34), substring({compact}, 1, 4)), ''), CAST(0 AS BIGINT), "
        "(acc, ch) -> CASE WHEN ch RLIKE '[0-9]' THEN (acc * 10 + CAST(ch AS BIGINT)) % 97 "
        "ELSE (acc * 100 + ascii(ch) - 55) % 97 END)"
    )
    return f"(length({compact}) BETWEEN 15 AND 34 AND {remainder} = 1)"


def _replace_valid(text: str, pattern: str, valid, placeholder: str, trim: str | None = None) -> str:
    """Replace the matches of `pattern` that pass `valid`; with `trim`, a match that fails is tried
    again without one or two trailing chunks (a greedy match may have taken the next word)."""
    found = f"regexp_extract_all({text}, {sql_literal(pattern)}, 0)"
    if trim:
        once = f"regexp_replace(c, {sql_literal(trim)}, '')"
        twice = f"regexp_replace({once}, {sql_literal(trim)}, '')"
        found = f"flatten(transform({found}, c -> array(c, {once}, {twice})))"
    replace = f"(acc, v) -> replace(acc, v, {sql_literal(placeholder)})"
    return f"aggregate(filter({found}, c -> {valid('c')}), {text}, {replace})"


def redact_phones(texts, regions):
    """Replace every phone number libphonenumber finds (valid for the sender's region, a mobile of
    another supported country in its own grouping, or any number written in international form) by
    the placeholder. Plain Python over pandas Series."""
    import phonenumbers
    from phonenumbers import Leniency, PhoneNumberMatcher, PhoneNumberType

    def spans(text: str, region: str | None):
        found = []
        for code in [region] if region else list(FALLBACK_REGIONS):
            found += [(m.start, m.end) for m in PhoneNumberMatcher(text, code, leniency=Leniency.VALID)]
        # A mobile number of another country written as that country groups it (an Italian
        # "333 123 4567" sent from Germany): mobile ranges are narrow, the grouping must match.
        # Tried only when a run of digits is left outside what the sender's region found.
        rest = list(text)
        for start, end in found:
            rest[start:end] = " " * (end - start)
        others = [c for c in FALLBACK_REGIONS if c != region] if region else []
        for code in others if re.search(PHONE_CANDIDATE_RE, "".join(rest)) else ():
            found += [
                (m.start, m.end)
                for m in PhoneNumberMatcher(text, code, leniency=Leniency.EXACT_GROUPING)
                if phonenumbers.number_type(m.number) == PhoneNumberType.MOBILE
            ]
        # "+CC ...": the writer says it is a phone number; a possible one is enough.
        found += [
            (m.start, m.end)
            for m in PhoneNumberMatcher(text, region or "ZZ", leniency=Leniency.POSSIBLE)
            if m.raw_string.startswith("+")
        ]
        return found

    out = []
    for text, region in zip(texts, regions):
        if text is None:
            out.append(None)
            continue
        region = region if region and phonenumbers.country_code_for_region(region) else None
        redacted = text
        for start, end in sorted(set(spans(text, region)), reverse=True):
            if PLACEHOLDERS["phone"] not in redacted[start:end]:
                redacted = redacted[:start] + PLACEHOLDERS["phone"] + redacted[end:]
        out.append(redacted)
    return out


def _phone_udf():
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def phones(texts: pd.Series, regions: pd.Series) -> pd.Series:
        strings = lambda values: [v if isinstance(v, str) else None for v in values]  # noqa: E731 (NaN: null)
        return pd.Series(redact_phones(strings(texts), strings(regions)), dtype=object)

    return phones


def redact_pii(text: str, country: str | None = None) -> Column:
    """Replace emails, mod-97-valid IBANs, Luhn-valid card numbers and phone numbers by placeholders
    in the SQL expression `text` (e.g. a column name), the sender's country in `country`.

    Order matters: IBANs and cards are digit runs a phone matcher could partly eat. Look-alikes
    survive: order numbers, dates, prices, ISBNs, digit runs failing the Luhn or mod-97 check.
    """
    out = f"regexp_replace({text}, {sql_literal(EMAIL_RE)}, {sql_literal(PLACEHOLDERS['email'])})"
    out = _replace_valid(out, IBAN_CANDIDATE_RE, _iban_valid, PLACEHOLDERS["iban"], trim=" [A-Za-z0-9]{1,4}$")
    out = _replace_valid(out, CARD_CANDIDATE_RE, _luhn_valid, PLACEHOLDERS["card"])
    out = F.expr(f"regexp_replace({out}, {sql_literal(US_STYLE_RE)}, {sql_literal(PLACEHOLDERS['phone'])})")
    region = F.expr(f"upper({country})") if country is not None else F.lit(None).cast("string")
    candidates = F.when(out.rlike(PHONE_CANDIDATE_RE), out)  # null elsewhere: nearly free to ship
    return F.coalesce(_phone_udf()(candidates, region), out)


def pii_kinds(original: Column, redacted: Column) -> Column:
    """Which placeholder kinds redaction introduced (array of strings), for counting; no values."""
    kinds = [F.when(F.locate(p, redacted) > F.locate(p, original), F.lit(k)) for k, p in PLACEHOLDERS.items()]
    return F.filter(F.array(*kinds), lambda k: k.isNotNull())
