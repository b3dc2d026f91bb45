"""Bronze ingest transforms, pure DataFrame to DataFrame (jobs/bronze/stage.py reads and writes):
parse -> classify (quarantine reason or none) -> dedupe -> erase -> redact PII -> pseudonymize.

`landing rows = bronze rows + quarantined rows + duplicates + erased` holds per dataset and run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.bronze.contract import Dataset
from jobs.io import sql_literal
from jobs.privacy.erasure_rules import tombstone_filter
from jobs.privacy.pii import hmac_sha256_hex, pii_kinds, redact_pii

STATUS_ACCEPTED, STATUS_QUARANTINED, STATUS_DUPLICATE, STATUS_ERASED = (
    "accepted",
    "quarantined",
    "duplicate",
    "erased",
)


@dataclass(frozen=True)
class IngestParams:
    """Everything a transform needs besides its input frame."""

    logical_date: dt.date
    as_of: dt.datetime  # wall-clock start of the run: later timestamps are "in the future"
    tolerance_hours: int
    iso_countries: frozenset[str]
    topic_ids: frozenset[str]
    key: bytes
    # Art. 9 categories: an engagement event keeps no such topic (SPEC section 5).
    sensitive_topic_ids: frozenset[str] = frozenset()

    def __post_init__(self):
        # PySpark reads a naive datetime literal in the Python process's local zone: results would
        # then depend on the host's TZ. Every instant handed to Spark is timezone-aware.
        if self.as_of.tzinfo is None:
            raise ValueError("IngestParams.as_of must be timezone-aware (UTC)")

    @property
    def window_start(self) -> dt.datetime:
        return utc_midnight(self.logical_date) - dt.timedelta(hours=self.tolerance_hours)

    @property
    def window_end(self) -> dt.datetime:
        return utc_midnight(self.logical_date + dt.timedelta(days=1)) + dt.timedelta(hours=self.tolerance_hours)


def utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


# -------------------------------------------------------------------------------------------- transform
def parse(raw: DataFrame, ds: Dataset) -> DataFrame:
    """Add `p`: the record's fields as strings (types are checked in classify), or malformed."""
    schema = T.StructType(
        [T.StructField(f, T.StringType()) for f in ds.field_names] + [T.StructField("_corrupt", T.StringType())]
    )
    return raw.select(
        "value",
        "source_file",
        "file_arrived_at",
        F.from_json("value", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}).alias("p"),
    )


def _isin(field: str, values) -> Column:
    """Field `field` of the parsed record is one of `values`: one SQL expression (a long list as
    Column literals costs two py4j round trips per value; countries are about 250)."""
    return F.expr(f"p.`{field}` IN {sql_literal(sorted(values))}") if values else F.lit(False)


def _blank(c):
    return c.isNull() | (F.trim(c) == "")


def classify(parsed: DataFrame, ds: Dataset, params: IngestParams) -> DataFrame:
    """Add `reason`: the first contract check the row fails (null when it passes)."""
    p = lambda name: F.col("p").getField(name)  # noqa: E731
    checks = [(F.col("p").isNull() | p("_corrupt").isNotNull(), F.lit("malformed_json"))]
    for f in ds.fields:
        if f.required:
            checks.append((_blank(p(f.name)), F.lit(f"missing_field:{f.name}")))
    for f in ds.fields:
        value = p(f.name)
        present = ~_blank(value)
        if f.kind == "enum":
            checks.append((present & ~_isin(f.name, f.values), F.lit(f"unknown_enum:{f.name}")))
        elif f.kind == "topic":
            checks.append((present & ~_isin(f.name, params.topic_ids), F.lit(f"unknown_enum:{f.name}")))
        elif f.kind == "country":
            checks.append((present & ~_isin(f.name, params.iso_countries), F.lit("invalid_country")))
        elif f.kind == "bool":
            checks.append((present & ~F.lower(value).isin("true", "false"), F.lit(f"invalid_value:{f.name}")))
        elif f.kind == "year":
            year = value.try_cast("int")
            checks.append(
                (
                    present & (year.isNull() | (year < 1900) | (year > params.logical_date.year)),
                    F.lit(f"invalid_value:{f.name}"),
                )
            )
    if ds.name == "erasure_requests":
        checks.append(
            (p("scope").isin("message", "conversation") & _blank(p("target_id")), F.lit("missing_field:target_id"))
        )
    ts = F.try_to_timestamp(p(ds.timestamp))
    checks.append((ts.isNull(), F.lit(f"invalid_timestamp:{ds.timestamp}")))
    if not ds.legal_request:  # a person's request is applied whatever its timestamp (SPEC section 3)
        checks += [
            (ts > F.lit(params.as_of), F.lit("future_timestamp")),
            ((ts < F.lit(params.window_start)) | (ts >= F.lit(params.window_end)), F.lit("timestamp_outside_window")),
        ]
    reason = F.lit(None).cast("string")
    for condition, label in reversed(checks):
        reason = F.when(condition, label).otherwise(reason)
    # From a line that cannot be parsed too (single-quoted, unquoted, unterminated): its key lets an
    # erasure find the quarantined row.
    user_id = F.coalesce(p("user_id"), F.regexp_extract("value", USER_ID_IN_RAW, 1))
    return parsed.select(
        "*",
        reason.alias("reason"),
        F.when(_blank(user_id), None).otherwise(hmac_sha256_hex(user_id, params.key)).alias("user_key"),
        ts.alias("_ts"),
    )


def mark_duplicates(classified: DataFrame, ds: Dataset, prior_keys: DataFrame | None) -> DataFrame:
    """Add `status`. Among valid rows, the first copy of a key (earliest file, then name, then
    content) is kept, so a late file never displaces a row already taken;
    later copies, and keys already in bronze on an earlier date, are duplicates."""
    keyed = classified.select(
        "*",
        *[
            (F.col(k) if k == "user_key" else F.col("p").getField(k) if k != ds.timestamp else F.col("_ts")).alias(
                f"_k_{k}"
            )
            for k in ds.key
        ],
    )
    key_cols = [f"_k_{k}" for k in ds.key]
    first = Window.partitionBy(F.col("reason").isNull(), *key_cols).orderBy(
        "file_arrived_at", "source_file", F.xxhash64("value"), "value"
    )
    ranked = keyed.select("*", F.when(F.col("reason").isNull(), F.row_number().over(first)).alias("_rank"))
    if prior_keys is not None:
        prior = prior_keys.select(*[F.col(k).alias(f"_k_{k}") for k in ds.key], F.lit(True).alias("_seen"))
        ranked = ranked.join(prior, on=key_cols, how="left")
    else:
        ranked = ranked.select("*", F.lit(None).cast("boolean").alias("_seen"))
    status = (
        F.when(F.col("reason").isNotNull(), STATUS_QUARANTINED)
        .when((F.col("_rank") > 1) | F.col("_seen").isNotNull(), STATUS_DUPLICATE)
        .otherwise(STATUS_ACCEPTED)
    )
    return ranked.select("*", status.alias("status")).drop(*key_cols, "_rank", "_seen")


def _extracted(field):
    if field is None:
        return F.lit(None).cast("string")
    from_raw = F.regexp_extract("value", rf'"{field}"\s*:\s*"([^"]+)"', 1)
    return F.coalesce(F.col("p").getField(field), F.when(from_raw != "", from_raw))


def erase(rows: DataFrame, ds: Dataset, requests: DataFrame | None) -> DataFrame:
    """Tombstones: a row any known erasure request covers gets status `erased` and is kept nowhere."""
    if requests is None or ds.name == "erasure_requests":
        return rows
    chat = ds.name == "chat_messages"
    marked = tombstone_filter(
        rows.select(
            "*", _extracted(ds.record_id if chat else None).alias("_rid"), _extracted(ds.conversation_id).alias("_cid")
        ),
        requests,
        "_rid" if chat else None,
        "_cid" if chat else None,
        chat_data=chat,
    )
    return marked.withColumn("status", F.when(F.col("_erased"), F.lit(STATUS_ERASED)).otherwise(F.col("status"))).drop(
        "_rid", "_cid", "_erased"
    )


def _field(ds: Dataset, name: str, sensitive: frozenset[str] = frozenset()):
    value = F.col("p").getField(name)
    kind = next(f.kind for f in ds.fields if f.name == name)
    if kind == "timestamp":
        return F.col("_ts").alias(name)
    if kind == "year":
        return value.try_cast("int").alias(name)
    if kind == "bool":
        return (F.lower(value) == "true").alias(name)
    if kind == "text":
        return redact_pii(f"p.`{name}`", "p.country").alias(name)
    if kind == "topic" and sensitive:
        return F.when(_blank(value) | _isin(name, sensitive), None).otherwise(value).alias(name)
    return F.when(_blank(value), None).otherwise(value).alias(name)


def to_bronze(accepted: DataFrame, ds: Dataset, params: IngestParams) -> DataFrame:
    """The bronze row: contract fields typed, text redacted, user_id replaced by user_key, a
    sensitive object_topic withheld."""
    cols = [
        F.col("user_key") if name == "user_id" else _field(ds, name, params.sensitive_topic_ids)
        for name in ds.field_names
    ]
    extra = []
    if ds.name == "chat_messages":
        extra = [
            F.lower(F.split(F.col("p").getField("locale"), "[-_]").getItem(0)).alias("language"),
            F.col("p").getField("text").alias("_original"),
        ]
    rows = accepted.select(*cols, *extra, "source_file", F.lit(params.logical_date).alias("ingest_date"))
    if ds.name != "chat_messages":
        return rows
    return rows.select(
        *[c for c in rows.columns if c not in ("_original", "source_file", "ingest_date")],
        pii_kinds(F.col("_original"), F.col("text")).alias("pii_redacted"),
        "source_file",
        "ingest_date",
    )


# A field name and its value, however the line quotes them ("...", '...', or not at all).
USER_ID_IN_RAW = r"""["']?user_id["']?\s*[:=]\s*["']?([^"',;}\s]+)"""
WITHHELD = "[WITHHELD]"


def raw_record(ds: Dataset, params: IngestParams) -> Column:
    """What quarantine keeps of a rejected line, safe beside a user key.

    A line that parses is re-encoded from its contract fields: user_id replaced by a placeholder,
    every value PII-redacted (escapes such as \\n are decoded first, so `\\n06 12 ...` is
    seen as a number) and a sensitive topic withheld. A line that cannot be parsed keeps only its
    shape: field names and punctuation, with every other run of letters and digits masked, so no
    id, name or number in it survives, whatever its quoting."""
    p = F.col("p")
    country = "p.country" if "country" in ds.field_names else None
    fields = []
    for f in ds.fields:
        value = p.getField(f.name)
        if f.name == "user_id":
            value = F.when(value.isNotNull(), F.lit("[USER_ID]"))
        elif f.kind == "topic":
            value = F.when(_isin(f.name, params.sensitive_topic_ids), F.lit(WITHHELD)).otherwise(value)
        elif f.kind in ("text", "str"):
            value = redact_pii(f"p.`{f.name}`", country)
        fields.append(value.alias(f.name))
    names = "|".join(sorted(ds.field_names, key=len, reverse=True))
    shape = F.regexp_replace("value", rf"(?U)(?<![\w@.+-])(?!(?:{names})(?![\w@.+-]))[\w@.+-]+", "*")
    return F.when(p.isNull() | p.getField("_corrupt").isNotNull(), shape).otherwise(F.to_json(F.struct(*fields)))


def to_quarantine(rejected: DataFrame, ds: Dataset, params: IngestParams) -> DataFrame:
    """Quarantine rows keep the reason, ids for erasure, the user key and the safe `raw_record`."""
    return rejected.select(
        F.lit(ds.name).alias("dataset"),
        F.lit(params.logical_date).alias("ingest_date"),
        "reason",
        "source_file",
        "user_key",
        _extracted(ds.record_id).alias("record_id"),
        _extracted(ds.conversation_id).alias("conversation_id"),
        raw_record(ds, params).alias("raw_redacted"),
    )
