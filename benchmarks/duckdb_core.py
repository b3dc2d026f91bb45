"""The single-node tool a user would pick instead of the Spark product: DuckDB running the core of the
nightly (ingest filters, vocabulary tagging, daily aggregates, decayed scoring, segment membership
with the minimum-audience suppression) from the same landing files, for one logical date, timed, and
optionally checked against a product warehouse's published members. Not part of the test suite.

    .venv/bin/python benchmarks/duckdb_core.py --landing DIR --date YYYY-MM-DD [--conf DIR]
        [--members out.parquet] [--compare-warehouse DIR] [--json out.json]

Reads every landing date up to D: profiles, preferences and erasure requests of all of them (the
user state is cumulative), chat and events of the widest region lookback (plus the duplicate
lookback before it). The result is what a warehouse holds after running each landing date up to D
once, in order, with a vocabulary-only tagger (the product always adds its learned model, `model:` in
conf/taxonomy.yaml: a comparison run needs that model replaced by one that finds nothing). Printed
times exclude Python's imports. Rules, with their product source:
- ingest (jobs/bronze/ingest.py, contract.py): JSON parse, required fields, enums, countries,
  topics, booleans, years, target_id of message/conversation erasures, timestamps parseable, not in
  the future and within the date +- timestamp_tolerance_hours (not for legal requests); the first
  copy of a key (file arrival, file name, line) kept, later copies and keys accepted on the
  duplicate_lookback_days before are dropped; rows any request known that night covers are erased;
  a sensitive object_topic is withheld; e-mail addresses in texts are redacted (the product's regex).
- privacy (jobs/privacy/requests.py, erasure_rules.py): requests up to D remove what they cover on
  every date: `account` the user everywhere, `all_chats` the user's chat rows, `message` and
  `conversation` the requester's rows with that id. User state as of D: latest profile and
  preference (updated_at, then ingest date), region from the country, ai_chat_ads default true.
  An objection (a preference ingested on night m leaving ai_chat_ads false, region honouring it)
  withdraws the user's chat rows of every night up to m; a user objecting on night n gets no chat
  rows that night (jobs/silver/stage.py).
- tagging (jobs/silver/tagger.py, vocabulary of conf/taxonomy.yaml through `vocabulary_rows`):
  normalised tokens, exact words and 3-letter prefix keys, multi-word terms, negation cues within
  the window before a topic term, the message's language or all of them.
- signals (jobs/silver/signals.py): user turns with a sensitive category yield nothing and flag
  their conversation where the message's region suppresses by conversation (every turn of a
  flagged conversation, on any date, yields nothing); objectors' turns yield nothing; events give
  their targetable object_topic or the topics of a search query without sensitive categories;
  daily weight per user, topic, source and date capped at daily_cap_per_topic.
- scoring and segments (jobs/gold/segments.py): weight * 0.5^(age/half_life) over the region's
  lookback, chat only from the region's rollout and, where honoured, for users who have not
  objected; scores rounded to 9 digits; rank per user; members with score >= min_score, rank <=
  top_k, known birth year with youngest age >= min_age, personalized_ads not false; a region's
  segment is published with at least min_audience_size members, unless blocked.
Skipped, as they change no member here: redaction of IBANs, cards and phone numbers (mod-97, Luhn,
libphonenumber; neither the generator's values nor the placeholders contain a vocabulary term, while
an address's "example" is an `exam*` term, hence the e-mail rule), quarantine and reconciliation
tables, quality gates, the removal of sensitive-conversation flags by erasures (a conversation has
one user). Work is on raw user ids; user_key = HMAC-SHA256(AUDIENCE_PSEUDONYM_KEY, user_id) (the
development key where the profile allows it, as the product) is computed in SQL for the output.

With --compare-warehouse, members are compared with the warehouse's gold.audience_segments of D
(published members), the catalog's member counts and statuses with gold.segment_catalog, and the
scores with gold.user_interests (a diagnostic); users with erasure requests in landing dates after D
up to the last date the warehouse ingested are left out first (the product removes them from every
stored snapshot). Exit code 1 when members or catalog differ.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import duckdb

from jobs.bronze.contract import DATASETS, Dataset
from jobs.config import load_config
from jobs.silver.tagger import FOLD_FROM, FOLD_TO, NEGATION, PREFIX_KEY_LEN, vocabulary_rows

# As jobs/privacy/pii.py (not imported: it loads pandas and pyspark, seconds a DuckDB user never pays).
KEY_ENV, AIRFLOW_KEY_ENV = "AUDIENCE_PSEUDONYM_KEY", "AUDIENCE_PSEUDONYM_KEY_AIRFLOW"
EMAIL_RE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
EMAIL_PLACEHOLDER = "[EMAIL]"


def pseudonym_key(allow_dev_key: bool) -> bytes:
    """The product's HMAC key: from the environment, else its development key where the profile allows."""
    key = os.environ.get(KEY_ENV) or os.environ.get(AIRFLOW_KEY_ENV, "")
    if key:
        return key.encode("utf-8")
    from jobs.privacy.pii import pseudonym_key as product_key

    return product_key(allow_dev_key)


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_list(values) -> str:
    return "(" + ", ".join(sql_str(v) for v in sorted(values)) + ")" if values else "(NULL)"


def blank(expr: str) -> str:
    return f"({expr} IS NULL OR trim({expr}) = '')"


class Core:
    """One DuckDB connection holding the run's tables; each method adds a few."""

    def __init__(self, cfg, landing: Path, day: dt.date, key: bytes):
        self.cfg, self.landing, self.day = cfg, landing, day
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.max_lookback = max(p.lookback_days for p in cfg.regions.values())
        self.window_start = day - dt.timedelta(days=self.max_lookback - 1)
        self.as_of = dt.datetime.now(dt.timezone.utc)
        self.read_rows: dict[str, int] = {}
        key = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")  # HMAC, RFC 2104
        self.ipad = bytes(b ^ 0x36 for b in key).hex()
        self.opad = bytes(b ^ 0x5C for b in key).hex()

    def sql(self, query: str) -> None:
        self.con.execute(query)

    def rows(self, query: str) -> list[tuple]:
        return self.con.sql(query).fetchall()

    def table(self, name: str, columns: str, rows: list[tuple]) -> None:
        """Table `name` ("col TYPE, ...") holding Python rows, passed as one list parameter per column
        (registering Arrow or pandas data would import pandas: seconds)."""
        typed = [c.split(" ", 1) for c in columns.split(", ")]
        select = ", ".join(f"unnest($c{i})::{t} AS {c}" for i, (c, t) in enumerate(typed))
        values = {f"c{i}": [r[i] for r in rows] for i in range(len(typed))}
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {select}", values)

    def user_key(self, col: str) -> str:
        inner = f"unhex(sha256(unhex('{self.ipad}') || encode({col})))"
        return f"sha256(unhex('{self.opad}') || {inner})"

    # ------------------------------------------------------------------------------------ config
    def load_config_tables(self) -> None:
        cfg = self.cfg
        self.table(
            "policy",
            "region VARCHAR, sensitive_suppression VARCHAR, chat_signals_from DATE, honor_chat_opt_out BOOLEAN,"
            " min_age INTEGER, min_audience_size INTEGER, lookback_days INTEGER, half_life_days DOUBLE,"
            " min_score DOUBLE, top_k INTEGER, blocked_segments VARCHAR[]",
            [
                (name, p.sensitive_suppression, p.chat_signals_from, p.honor_chat_opt_out, p.min_age)
                + (p.min_audience_size, p.lookback_days, p.half_life_days, p.min_score, p.top_k, p.blocked_segments)
                for name, p in cfg.regions.items()
            ],
        )
        self.table("country_region", "country VARCHAR, region VARCHAR", sorted(cfg.country_region.items()))
        self.table("segment_defs", "segment_id VARCHAR", [(t.topic_id,) for t in cfg.targetable_topics])
        self.table("event_weight", "event_type VARCHAR, weight DOUBLE", list(cfg.engagement_weights.items()))
        self.table(
            "vocab",  # the product's vocabulary rows (jobs/silver/tagger.py)
            "v_lang VARCHAR, topic VARCHAR, sensitive BOOLEAN, v_tokens VARCHAR[], v_prefix BOOLEAN[],"
            " v_key VARCHAR, v_key_is_prefix BOOLEAN",
            vocabulary_rows(cfg),
        )

    # ------------------------------------------------------------------------------------ ingest
    def files(self, ds: Dataset, first: dt.date | None, last: dt.date) -> list[tuple[str, dt.date, float]]:
        """(path, night, modification time) of the dataset's landing files of nights first..last."""
        suffixes = (".parquet",) if ds.file_format == "parquet" else (".jsonl", ".jsonl.gz")
        found = []
        for folder in sorted(glob.glob(str(self.landing / ds.name / "date=*"))):
            try:
                night = dt.date.fromisoformat(Path(folder).name.removeprefix("date="))
            except ValueError:
                continue
            if night > last or (first and night < first):
                continue
            for path in sorted(glob.glob(f"{folder}/*")):
                if path.endswith(suffixes) and os.path.isfile(path):
                    found.append((path, night, os.path.getmtime(path)))
        folder = self.landing / ds.name / f"date={last}"
        if ds.delivered_daily and not folder.is_dir():
            raise SystemExit(f"landing folder missing: {folder} (upstream has not delivered {ds.name} for {last})")
        return found

    def parsed(self, ds: Dataset, files) -> str:
        """SQL of the raw rows: every contract field as text (`f_<name>`), value, file, mtime, night,
        and `ok_json` (false: the line is not a JSON object)."""
        self.table(f"files_{ds.name}", "file VARCHAR, night DATE, mtime DOUBLE", files)
        files_sql = "[" + ", ".join(sql_str(f[0]) for f in files) + "]"
        if not files:  # no records: the same columns, no row
            fields = ", ".join(f"NULL::VARCHAR AS f_{f}" for f in ds.field_names)
            empty = "SELECT NULL AS value, NULL AS file, false AS ok_json, NULL::DATE AS night, 0.0 AS mtime"
            return f"{empty}, {fields} LIMIT 0"
        if ds.file_format == "jsonl":  # valid lines are parsed twice: their type, then every field at once
            paths = "[" + ", ".join(sql_str("$." + f) for f in ds.field_names) + "]"
            fields = ", ".join(f"CASE WHEN ok_json THEN _f[{i}] END AS f_{f}" for i, f in enumerate(ds.field_names, 1))
            raw = (
                f"SELECT value, file, coalesce(json_type(CASE WHEN valid THEN value END) = 'OBJECT', false) AS ok_json,"
                f" json_extract_string(CASE WHEN valid THEN value ELSE '{{}}' END, {paths}) AS _f FROM ("
                f"SELECT value, filename AS file, json_valid(value) AS valid FROM read_csv({files_sql},"
                f" columns = {{'value': 'VARCHAR'}}, header = false, delim = chr(31), quote = '', escape = '',"
                f" auto_detect = false, filename = true, hive_partitioning = false))"
            )
        else:
            present = {
                r[0] for r in self.rows(f"DESCRIBE SELECT * FROM read_parquet({files_sql}, union_by_name = true)")
            }
            cols = {f: f'CAST("{f}" AS VARCHAR)' if f in present else "NULL::VARCHAR" for f in ds.field_names}
            fields = ", ".join(f"{expr} AS f_{f}" for f, expr in cols.items())
            raw = (  # `value`, the last tie-break between copies of a key: the fields
                f"SELECT *, concat_ws(chr(31), {', '.join(cols.values())}) AS value, filename AS file, true AS ok_json"
                f" FROM read_parquet({files_sql}, union_by_name = true, filename = true, hive_partitioning = false)"
            )
        return (
            f"SELECT r.value, r.file, r.ok_json, f.night, f.mtime, {fields}"
            f" FROM ({raw}) r JOIN files_{ds.name} f USING (file)"
        )

    def landed(self, ds: Dataset, files) -> str:
        """SQL of the parsed rows with `ts`, the record's timestamp (null: unparseable)."""
        return f"SELECT *, TRY_CAST(f_{ds.timestamp} AS TIMESTAMPTZ) AS ts FROM ({self.parsed(ds, files)})"

    def valid(self, ds: Dataset) -> str:
        """SQL condition: the row passes every contract check of classify()."""
        cfg = self.cfg
        checks = ["ok_json"]
        for f in ds.fields:
            col = f"f_{f.name}"
            if f.required:
                checks.append(f"NOT {blank(col)}")
            present = f"NOT {blank(col)}"
            if f.kind == "enum":
                checks.append(f"NOT ({present} AND {col} NOT IN {sql_list(f.values)})")
            elif f.kind == "topic":
                checks.append(f"NOT ({present} AND {col} NOT IN {sql_list(cfg.topics)})")
            elif f.kind == "country":
                checks.append(f"NOT ({present} AND {col} NOT IN {sql_list(cfg.iso_countries)})")
            elif f.kind == "bool":
                checks.append(f"NOT ({present} AND lower({col}) NOT IN ('true', 'false'))")
            elif f.kind == "year":
                year = f"TRY_CAST({col} AS INTEGER)"
                checks.append(f"NOT ({present} AND ({year} IS NULL OR {year} < 1900 OR {year} > year(night)))")
        if ds.name == "erasure_requests":
            checks.append(f"NOT (f_scope IN ('message', 'conversation') AND {blank('f_target_id')})")
        checks.append("ts IS NOT NULL")
        if not ds.legal_request:
            tol = f"INTERVAL {cfg.timestamp_tolerance_hours} HOUR"
            checks += [
                f"ts <= {sql_str(self.as_of.isoformat())}::TIMESTAMPTZ",
                f"ts >= night::TIMESTAMPTZ - {tol}",
                f"ts < (night + 1)::TIMESTAMPTZ + {tol}",
            ]
        return " AND ".join(f"coalesce({c}, false)" for c in checks)

    def ingest(self, ds: Dataset, first: dt.date | None) -> None:
        """bronze_<dataset>: the accepted rows of each night, typed (user_id kept, not keyed)."""
        files = self.files(ds, first, self.day)
        name = ds.name
        self.sql(f"CREATE OR REPLACE TABLE landed_{name} AS {self.landed(ds, files)}")
        self.read_rows[name] = self.rows(f"SELECT count(*) FROM landed_{name}")[0][0]
        key = [("f_user_id" if k == "user_key" else "ts" if k == ds.timestamp else f"f_{k}") for k in ds.key]
        typed = []
        for f in ds.fields:
            col = f"f_{f.name}"
            if f.kind == "timestamp":
                typed.append(f"ts AS {f.name}")
            elif f.kind == "year":
                typed.append(f"TRY_CAST({col} AS INTEGER) AS {f.name}")
            elif f.kind == "bool":
                typed.append(f"lower({col}) = 'true' AS {f.name}")
            elif f.kind == "text":
                # emails redacted as the product does ("example" of an address is an `exam*` term);
                # IBANs, cards and phone numbers are not: neither they nor their placeholders match a term
                typed.append(f"regexp_replace({col}, {sql_str(EMAIL_RE)}, '{EMAIL_PLACEHOLDER}', 'g') AS {f.name}")
            elif f.kind == "topic":  # a sensitive object_topic is withheld
                sensitive = sql_list(t for t, x in self.cfg.topics.items() if x.sensitive)
                typed.append(f"CASE WHEN {blank(col)} OR {col} IN {sensitive} THEN NULL ELSE {col} END AS {f.name}")
            else:
                typed.append(f"CASE WHEN {blank(col)} THEN NULL ELSE {col} END AS {f.name}")
        if name == "chat_messages":
            typed.append("lower(regexp_split_to_array(f_locale, '[-_]')[1]) AS language")
        self.sql(
            f"CREATE OR REPLACE TABLE candidates_{name} AS SELECT night, {', '.join(typed)},"
            f" [{', '.join(f'CAST({k} AS VARCHAR)' for k in key)}] AS _key FROM ("
            f"  SELECT *, row_number() OVER (PARTITION BY night, {', '.join(key)}"
            f"   ORDER BY mtime, file, value) AS _rank FROM landed_{name} WHERE {self.valid(ds)}"
            f") WHERE _rank = 1"
        )
        self.sql(f"CREATE OR REPLACE TABLE bronze_{name} AS SELECT * FROM candidates_{name} WHERE false")
        nights = [r[0] for r in self.rows(f"SELECT DISTINCT night FROM candidates_{name} ORDER BY 1")]
        lookback = self.cfg.duplicate_lookback_days
        for night in nights:  # a key accepted on the nights before is a duplicate: night by night
            self.sql(
                f"INSERT INTO bronze_{name} SELECT c.* FROM candidates_{name} c"
                f" WHERE c.night = DATE '{night}' AND NOT EXISTS (SELECT 1 FROM bronze_{name} b"
                f"  WHERE b._key = c._key AND b.night BETWEEN DATE '{night}' - {lookback} AND DATE '{night}' - 1)"
                f" AND NOT ({self.tombstoned(ds, 'c', night)})"
            )

    def tombstoned(self, ds: Dataset, alias: str, night: dt.date) -> str:
        """Rows of `alias` (with user_id) a request known on `night` erases (its requests, ingested first)."""
        if ds.name == "erasure_requests":
            return "false"
        known = f"FROM bronze_erasure_requests WHERE night <= DATE '{night}' AND scope"
        if ds.name != "chat_messages":
            return f"{alias}.user_id IN (SELECT user_id {known} = 'account')"
        return (
            f"({alias}.user_id IN (SELECT user_id {known} IN ('all_chats', 'account'))"
            f" OR ({alias}.user_id, {alias}.message_id) IN (SELECT (user_id, target_id) {known} = 'message')"
            f" OR ({alias}.user_id, {alias}.conversation_id) IN (SELECT (user_id, target_id) {known} = 'conversation'))"
        )

    # ------------------------------------------------------------------------------------ state
    def user_state(self) -> None:
        """User state as of a night (latest profile and preference ingested by then, by updated_at
        then night) for the nights it is read: D (without erased accounts), the nights a user's
        preference changed (objections, which withdraw chat rows) and those of their chat turns."""
        latest = "arg_max({columns}, (b.updated_at, b.night))"  # a struct: a null field is kept
        self.sql(
            f"""
            CREATE OR REPLACE TABLE erased_accounts AS
                SELECT DISTINCT user_id FROM bronze_erasure_requests WHERE scope = 'account';
            CREATE OR REPLACE TEMP TABLE asked AS
                SELECT user_id, DATE '{self.day}' AS night FROM bronze_user_profiles
                UNION SELECT user_id, DATE '{self.day}' FROM bronze_ad_preferences
                UNION SELECT user_id, night FROM bronze_ad_preferences
                UNION SELECT user_id, night FROM bronze_chat_messages WHERE role = 'user';
            CREATE OR REPLACE TEMP TABLE states AS
                WITH profile AS (
                    SELECT a.user_id, a.night, {latest.format(columns="{birth_year: b.birth_year, country: b.country}")}
                        AS p
                    FROM asked a JOIN bronze_user_profiles b ON b.user_id = a.user_id AND b.night <= a.night
                    GROUP BY ALL),
                pref AS (
                    SELECT a.user_id, a.night,
                        {latest.format(columns="{ai_chat_ads: b.ai_chat_ads, personalized: b.personalized_ads}")} AS q
                    FROM asked a JOIN bronze_ad_preferences b ON b.user_id = a.user_id AND b.night <= a.night
                    GROUP BY ALL)
                SELECT user_id, night, p.birth_year,
                    CASE WHEN p IS NOT NULL THEN coalesce(r.region, '{self.cfg.default_region}') END AS region,
                    coalesce(q.ai_chat_ads, true) AS ai_chat_ads, q.personalized AS personalized_ads
                FROM profile FULL JOIN pref USING (user_id, night) LEFT JOIN country_region r ON r.country = p.country;
            CREATE OR REPLACE TEMP TABLE state AS
                SELECT * EXCLUDE (night) FROM states
                WHERE night = DATE '{self.day}' AND user_id NOT IN (SELECT user_id FROM erased_accounts);
            CREATE OR REPLACE TEMP TABLE withdrawn AS  -- a user's chat rows up to their last objection
                SELECT s.user_id, max(s.night) AS last_night FROM states s JOIN policy p USING (region)
                WHERE NOT s.ai_chat_ads AND p.honor_chat_opt_out
                    AND (s.user_id, s.night) IN (SELECT (user_id, night) FROM bronze_ad_preferences)
                GROUP BY ALL;
            """
        )

    # ------------------------------------------------------------------------------------ tagging
    def tag(self, source: str, out: str) -> None:
        """source(id, text, language) -> {out}_topics(id, topic), {out}_sensitive(id): tokens joined to
        the vocabulary on the first token (exact, or its 3 letters for a `stem*` term) in the message's
        language (any, when not one of the taxonomy's), then the term's other tokens checked in place."""
        norm = (
            f"trim(regexp_replace(translate(replace(lower(text), 'ß', 'ss'), {sql_str(FOLD_FROM)},"
            f" {sql_str(FOLD_TO)}), '[^a-z0-9]+', ' ', 'g'))"
        )
        full_match = (
            "list_bool_and(list_transform(range(len(v_tokens)), lambda i: coalesce(CASE WHEN v_prefix[i + 1]"
            " THEN starts_with(tokens[pos + i + 1], v_tokens[i + 1]) ELSE tokens[pos + i + 1] = v_tokens[i + 1]"
            " END, false)))"
        )
        same_lang = "(t.lang IS NULL OR t.lang = v.v_lang)"
        self.sql(
            f"""
            CREATE OR REPLACE TEMP TABLE {out}_docs AS
                SELECT id, string_split({norm}, ' ') AS tokens,
                    CASE WHEN language IN {sql_list(self.cfg.languages)} THEN language END AS lang
                FROM {source};
            CREATE OR REPLACE TEMP TABLE {out}_matches AS
                WITH tokens AS (
                    SELECT id, lang, unnest(tokens) AS token, unnest(range(len(tokens))) AS pos FROM {out}_docs),
                first AS (
                    SELECT t.id, t.pos, v.* FROM tokens t JOIN vocab v
                        ON t.token = v.v_key AND NOT v.v_key_is_prefix AND {same_lang}
                    UNION ALL
                    SELECT t.id, t.pos, v.* FROM tokens t JOIN vocab v
                        ON substr(t.token, 1, {PREFIX_KEY_LEN}) = v.v_key AND v.v_key_is_prefix AND {same_lang})
                SELECT id, topic, sensitive, pos, pos + len(v_tokens) - 1 AS "end"
                FROM first JOIN {out}_docs USING (id)
                WHERE pos + len(v_tokens) <= len(tokens) AND {full_match};
            CREATE OR REPLACE TEMP TABLE {out}_topics AS
                SELECT DISTINCT id, topic FROM {out}_matches x
                WHERE topic != '{NEGATION}' AND NOT sensitive AND NOT EXISTS (
                    SELECT 1 FROM {out}_matches c WHERE c.id = x.id AND c.topic = '{NEGATION}'
                        AND c."end" < x.pos AND x.pos - c."end" <= {self.cfg.negation_window});
            CREATE OR REPLACE TEMP TABLE {out}_sensitive AS
                SELECT DISTINCT id FROM {out}_matches WHERE sensitive;
            """
        )

    # ------------------------------------------------------------------------------------ signals
    def signals(self) -> None:
        cfg = self.cfg
        # a tagged id is the night's record id: the product tags one night at a time
        self.sql(
            f"CREATE OR REPLACE TEMP VIEW turns AS SELECT night || '/' || message_id AS id, message_id, text,"
            f" language, night, conversation_id, user_id, coalesce(r.region, '{cfg.default_region}') AS msg_region"
            f" FROM bronze_chat_messages m LEFT JOIN country_region r USING (country) WHERE role = 'user'"
        )
        self.tag("turns", "chat")
        self.sql(
            f"CREATE OR REPLACE TEMP VIEW queries AS SELECT night || '/' || event_id AS id, query_text AS text,"
            f" NULL::VARCHAR AS language FROM bronze_engagement_events"
            f" WHERE query_text IS NOT NULL AND night >= DATE '{self.window_start}'"
        )
        self.tag("queries", "query")
        chat = next(ds for ds in DATASETS if ds.name == "chat_messages")
        self.sql(
            f"""
            CREATE OR REPLACE TEMP TABLE flagged AS
                SELECT DISTINCT t.conversation_id FROM turns t JOIN chat_sensitive USING (id)
                JOIN policy p ON p.region = t.msg_region WHERE p.sensitive_suppression = 'conversation';
            CREATE OR REPLACE TEMP TABLE chat_rows AS
                SELECT t.user_id, x.topic, t.night AS signal_date FROM turns t JOIN chat_topics x USING (id)
                WHERE t.id NOT IN (SELECT id FROM chat_sensitive)
                    AND t.conversation_id NOT IN (SELECT conversation_id FROM flagged)
                    AND (t.user_id, t.night) NOT IN (SELECT (user_id, night) FROM states WHERE NOT ai_chat_ads)
                    AND t.night > coalesce((SELECT last_night FROM withdrawn w WHERE w.user_id = t.user_id),
                        DATE '-infinity')
                    AND NOT {self.tombstoned(chat, "t", self.day)}
                    AND t.night >= DATE '{self.window_start}';
            CREATE OR REPLACE TEMP TABLE engagement_rows AS
                SELECT user_id, object_topic AS topic, event_type, night AS signal_date
                FROM bronze_engagement_events
                WHERE object_topic IN (SELECT segment_id FROM segment_defs)
                UNION ALL
                SELECT e.user_id, x.topic, e.event_type, e.night FROM bronze_engagement_events e
                JOIN query_topics x ON x.id = e.night || '/' || e.event_id
                WHERE e.object_topic IS NULL AND x.id NOT IN (SELECT id FROM query_sensitive);
            CREATE OR REPLACE TEMP TABLE daily_signals AS
                SELECT user_id, topic, source, signal_date, least(sum(w), {float(cfg.daily_cap_per_topic)}) AS weight
                FROM (
                    SELECT user_id, topic, 'chat' AS source, signal_date, {float(cfg.chat_turn_weight)} AS w
                    FROM chat_rows
                    UNION ALL
                    SELECT user_id, topic, 'engagement', signal_date, w.weight FROM engagement_rows
                    JOIN event_weight w USING (event_type)
                    WHERE signal_date >= DATE '{self.window_start}')
                WHERE user_id NOT IN (SELECT user_id FROM erased_accounts)
                GROUP BY ALL;
            """
        )

    # ------------------------------------------------------------------------------------ gold
    def segments(self) -> None:
        d = f"DATE '{self.day}'"
        self.sql(
            f"""
            CREATE OR REPLACE TEMP TABLE interests AS
                WITH usable AS (
                    SELECT s.user_id, st.region, s.topic, s.source,
                        s.weight * pow(0.5, ({d} - s.signal_date) / p.half_life_days) AS decayed
                    FROM daily_signals s JOIN state st USING (user_id) JOIN policy p ON p.region = st.region
                    WHERE s.signal_date <= {d} AND {d} - s.signal_date < p.lookback_days
                        AND (s.source = 'engagement' OR (p.chat_signals_from IS NOT NULL AND {d} >= p.chat_signals_from
                            AND (NOT p.honor_chat_opt_out OR st.ai_chat_ads)))),
                scored AS (
                    SELECT user_id, region, topic,
                        round(sum(CASE WHEN source = 'chat' THEN decayed ELSE 0 END), 9) AS chat_score,
                        round(sum(CASE WHEN source = 'engagement' THEN decayed ELSE 0 END), 9) AS engagement_score
                    FROM usable GROUP BY ALL)
                SELECT *, chat_score + engagement_score AS score,
                    row_number() OVER (PARTITION BY user_id ORDER BY chat_score + engagement_score DESC, topic)
                        AS topic_rank
                FROM scored;
            CREATE OR REPLACE TEMP TABLE candidates AS
                SELECT i.region, i.topic AS segment_id, i.user_id, i.score, i.chat_score, i.engagement_score
                FROM interests i JOIN policy p USING (region) JOIN state st USING (user_id)
                WHERE st.birth_year IS NOT NULL AND coalesce(st.personalized_ads, true)
                    AND i.score >= p.min_score AND i.topic_rank <= p.top_k
                    AND {self.day.year} - st.birth_year - 1 >= p.min_age;
            CREATE OR REPLACE TEMP TABLE catalog AS
                SELECT p.region, s.segment_id, coalesce(c.n, 0) AS member_count,
                    CASE WHEN list_contains(p.blocked_segments, s.segment_id) THEN 'suppressed_policy'
                        WHEN coalesce(c.n, 0) >= p.min_audience_size THEN 'published'
                        ELSE 'suppressed_min_audience' END AS status
                FROM policy p CROSS JOIN segment_defs s
                LEFT JOIN (SELECT region, segment_id, count(*) AS n FROM candidates GROUP BY ALL) c
                    USING (region, segment_id);
            CREATE OR REPLACE TEMP TABLE members AS
                SELECT c.*, {self.user_key("c.user_id")} AS user_key FROM candidates c
                JOIN catalog USING (region, segment_id) WHERE status = 'published';
            """
        )

    def run(self) -> dict[str, float]:
        """The core, after load_config_tables; returns seconds per step."""
        steps, start = {}, time.monotonic()

        def lap(name):
            nonlocal start
            steps[name] = round(time.monotonic() - start, 3)
            start = time.monotonic()

        first_signal = self.window_start - dt.timedelta(days=self.cfg.duplicate_lookback_days)
        by_name = {ds.name: ds for ds in DATASETS}
        self.ingest(by_name["erasure_requests"], None)  # first: tombstones for the others
        for name in ("user_profiles", "ad_preferences"):
            self.ingest(by_name[name], None)
        for name in ("chat_messages", "engagement_events"):
            self.ingest(by_name[name], first_signal)
        lap("read and ingest")
        self.user_state()
        lap("user state")
        self.signals()
        lap("tagging and daily signals")
        self.segments()
        lap("scores and segments")
        return steps


# ---------------------------------------------------------------------------------------- compare
def compare(core: Core, warehouse: Path) -> dict:
    """Members, catalog and scores of D against the product warehouse's gold tables (delta-rs)."""
    from deltalake import DeltaTable

    con, d = core.con, core.day
    tables = {"nights": "quality/ingest_reconciliation"}
    tables.update({name: f"gold/{name}" for name in ("audience_segments", "segment_catalog", "user_interests")})
    for name, path in tables.items():
        if not (warehouse / path / "_delta_log").is_dir():
            raise SystemExit(f"{warehouse}: no Delta table {path}")
        con.register(f"product_{name}", DeltaTable(str(warehouse / path)).to_pyarrow_dataset())
    if not con.sql(f"SELECT count(*) FROM product_segment_catalog WHERE snapshot_date = DATE '{d}'").fetchall()[0][0]:
        raise SystemExit(f"{warehouse}: gold.segment_catalog has no snapshot of {d}")
    # requests ingested after D removed their users from D's stored snapshot (first application)
    last = con.sql("SELECT max(ingest_date) FROM product_nights").fetchall()[0][0]
    ds = next(x for x in DATASETS if x.name == "erasure_requests")
    files = core.files(ds, d + dt.timedelta(days=1), last) if last > d else []
    later = (
        con.sql(
            f"SELECT DISTINCT {core.user_key('f_user_id')} FROM ({core.landed(ds, files)}) WHERE {core.valid(ds)}"
        ).fetchall()
        if files
        else []
    )
    core.table("later_requests", "user_key VARCHAR", later)
    day = f"snapshot_date = DATE '{d}'"

    def diff(mine: str, product: str, cols: str) -> dict:
        counts = con.sql(
            f"""SELECT
                (SELECT count(*) FROM (SELECT {cols} FROM ({mine}) INTERSECT SELECT {cols} FROM ({product}))),
                (SELECT count(*) FROM (SELECT {cols} FROM ({product}) EXCEPT SELECT {cols} FROM ({mine}))),
                (SELECT count(*) FROM (SELECT {cols} FROM ({mine}) EXCEPT SELECT {cols} FROM ({product})))"""
        ).fetchall()[0]
        return dict(zip(("matching", "missing", "extra"), counts))

    kept = "user_key NOT IN (SELECT user_key FROM later_requests)"
    members = diff(
        f"SELECT * FROM members WHERE {kept}",
        f"SELECT * FROM product_audience_segments WHERE {day}",
        "region, segment_id, user_key",
    )
    catalog = diff(
        "SELECT * FROM catalog",
        f"SELECT * FROM product_segment_catalog WHERE {day}",
        "region, segment_id, member_count, status",
    )
    mine_interests = f"SELECT *, {core.user_key('user_id')} AS user_key FROM interests"
    interests = diff(
        f"SELECT * FROM ({mine_interests}) WHERE {kept}",
        f"SELECT * FROM product_user_interests WHERE {day}",
        "region, user_key, topic, topic_rank",
    )
    interests["max_score_difference"] = con.sql(
        f"SELECT max(abs(m.score - p.score)) FROM ({mine_interests}) m"
        f" JOIN product_user_interests p USING (region, user_key, topic) WHERE p.{day}"
    ).fetchall()[0][0]
    return {
        "warehouse": str(warehouse),
        "later_erasure_users": len(later),
        "members": members,
        "catalog": catalog,
        "interests": interests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--date", type=dt.date.fromisoformat, required=True, help="logical date D")
    parser.add_argument("--conf", type=Path, help="conf folder (default: the package's conf/)")
    parser.add_argument("--members", type=Path, help="also write the published members as Parquet")
    parser.add_argument("--compare-warehouse", type=Path, help="product warehouse to check the members against")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    started = time.monotonic()
    cfg = load_config(args.conf, landing=args.landing)
    core = Core(cfg, args.landing.absolute(), args.date, pseudonym_key(cfg.profile.allow_dev_pseudonym_key))
    core.load_config_tables()
    setup = time.monotonic() - started
    steps = core.run()
    core_seconds = time.monotonic() - started - setup

    rows = core.rows(
        "SELECT region, segment_id, member_count, status FROM catalog WHERE member_count > 0"
        " ORDER BY region, member_count DESC, segment_id"
    )
    print(f"{'region':<7} {'segment':<22} {'members':>8}  status")
    for region in sorted({r[0] for r in rows}):  # published segments, then the region's others summed
        mine = [r for r in rows if r[0] == region]
        for _, segment, count, status in (r for r in mine if r[3] == "published"):
            print(f"{region:<7} {segment:<22} {count:>8}  {status}")
        others = [r for r in mine if r[3] != "published"]
        if others:
            label = f"({len(others)} others)"
            print(f"{region:<7} {label:<22} {sum(r[2] for r in others):>8}  {'/'.join(sorted({r[3] for r in others}))}")
    published = sum(r[2] for r in rows if r[3] == "published")
    print(
        f"\n{args.date}: {published:,} published members in {sum(r[3] == 'published' for r in rows)} segments;"
        f" {sum(r[2] for r in rows):,} candidates; landing rows read {sum(core.read_rows.values()):,}"
    )
    print(f"wall {setup + core_seconds:.2f}s: setup (conf, vocabulary) {setup:.2f}s, DuckDB {core_seconds:.2f}s")
    print("  " + ", ".join(f"{k} {v:.2f}s" for k, v in steps.items()))
    if args.members:
        core.sql(
            f"COPY (SELECT DATE '{args.date}' AS snapshot_date, region, segment_id, user_key, score, chat_score,"
            f" engagement_score FROM members ORDER BY ALL) TO {sql_str(str(args.members))} (FORMAT parquet)"
        )
        print(f"members: {args.members}")
    figures = {
        "date": args.date.isoformat(),
        "landing": str(args.landing),
        "duckdb": duckdb.__version__,
        "cores": os.cpu_count(),
        "landing_rows": core.read_rows,
        "published_members": published,
        "segments": [dict(zip(("region", "segment_id", "member_count", "status"), r)) for r in rows],
        "setup_seconds": round(setup, 3),
        "duckdb_seconds": round(core_seconds, 3),
        "steps": steps,
    }
    failed = False
    if args.compare_warehouse:
        result = compare(core, args.compare_warehouse)
        figures["comparison"] = result
        print(f"\ncompared with {args.compare_warehouse} (gold tables of {args.date}):")
        if result["later_erasure_users"]:
            print(f"  {result['later_erasure_users']} users with erasure requests after {args.date} left out")
        for name in ("members", "catalog", "interests"):
            r = result[name]
            print(f"  {name:<9}: {r['matching']:,} matching, {r['missing']:,} missing, {r['extra']:,} extra")
        print(f"  largest score difference on matching interests: {result['interests']['max_score_difference']}")
        failed = any(result[n]["missing"] or result[n]["extra"] for n in ("members", "catalog"))
        if result["interests"]["extra"] and not result["interests"]["matching"]:
            print(f"  no user_key in common: is {KEY_ENV} the key the warehouse was built with?")
        print("  members and catalog: " + ("DIFFERENT" if failed else "identical"))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(f"figures: {args.json}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
