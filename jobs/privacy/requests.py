"""Privacy requests applied to the stored tables, every night before signals are built: erasures
(their scopes' meaning is in jobs/privacy/erasure_rules.py) and objections to chat-derived ads."""

from __future__ import annotations

import datetime as dt
import functools

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import tables as t
from jobs.config import Config
from jobs.io import delta_exists, merge_into, replace_partition
from jobs.privacy.erasure_rules import ID_SCOPES, OWNED, REQUESTS, Clause, clauses


def requested_after(spark, cfg: Config, d: dt.date) -> DataFrame:
    """user_key of every user with an erasure request received after `d` (few rows)."""
    path = t.ERASURE_REQUESTS.path(cfg.warehouse)
    if not delta_exists(path):
        return spark.createDataFrame([], "user_key string")
    return (
        spark.read.format("delta")
        .load(path)
        .where(F.col("ingest_date") > F.lit(d))
        .select("user_key")
        .where(F.col("user_key").isNotNull())
        .distinct()
    )


def _owned_conversations(spark, cfg: Config, requests: DataFrame) -> DataFrame:
    """request_id, conversation_id: the conversations each request covers that belong to its user
    (found in the keyed chat tables, before anything is deleted), materialized."""
    found = []
    for table in t.ALL_TABLES:
        if not (table.user_key and table.conversation_id and table.chat_rows) or table.erasure_record:
            continue
        if not delta_exists(table.path(cfg.warehouse)):
            continue
        frame = spark.read.format("delta").load(table.path(cfg.warehouse)).alias("t")
        cond = (
            "t.user_key = s.user_key AND (s.scope IN ('all_chats', 'account') OR "
            "(s.scope = 'conversation' AND t.conversation_id = s.target_id))"
        )
        if table.chat_rows != t.ALL_ROWS:
            cond += f" AND ({table.chat_rows})"
        found.append(
            frame.join(F.broadcast(requests.alias("s")), F.expr(cond), "inner").select(
                "s.request_id", "t.conversation_id"
            )
        )
    if not found:
        return spark.createDataFrame([], "request_id string, conversation_id string")
    union = functools.reduce(DataFrame.unionByName, found)
    return union.where(F.col("conversation_id").isNotNull()).distinct().localCheckpoint(eager=True)


def apply_erasures(spark, cfg: Config, logical_date: dt.date, run_id: str) -> tuple[list[dict], set[dt.date]]:
    """Delete what the night's requests cover from every table holding personal data; log each.
    Returns the requests applied and the dates whose chat topics lost rows (their daily aggregates
    are to be rebuilt)."""
    req_path = t.ERASURE_REQUESTS.path(cfg.warehouse)
    if not delta_exists(req_path):
        return [], set()
    log_path = t.ERASURE_LOG.path(cfg.warehouse)
    logged = (
        spark.read.format("delta").load(log_path).select("request_id", F.lit(True).alias("_logged"))
        if delta_exists(log_path)
        else spark.createDataFrame([], "request_id string, _logged boolean")
    )
    requests = (
        spark.read.format("delta")
        .load(req_path)
        .where(F.col("ingest_date") == F.lit(logical_date))
        .join(logged, "request_id", "left")
        .select(
            "request_id",
            "scope",
            "user_key",
            "target_id",
            F.col("ingest_date").alias("received_date"),
            F.col("_logged").isNull().alias("first_time"),
        )
    )
    # The night's requests are few (a person's request each): collecting them is bounded.
    tonight = requests.collect()
    if not tonight:
        return [], set()
    requests = spark.createDataFrame(tonight, requests.schema)
    scopes = {r.scope for r in tonight}
    sources = {
        REQUESTS: requests,
        OWNED: _owned_conversations(spark, cfg, requests).join(requests, on="request_id", how="inner"),
    }
    # Per table, what tonight's scopes erase there (one condition: a MERGE and a count per table,
    # not per scope). A row covered by two of tonight's requests counts for each.
    targets = []
    for table in t.ALL_TABLES:
        wanted = [c for c in clauses(table) if scopes & set(c.scopes)]
        if wanted and delta_exists(table.path(cfg.warehouse)):
            targets.append((table, sources[wanted[0].source], " OR ".join(f"({c.condition()})" for c in wanted)))
    # One job counts every table's hits per request, with the dates of the chat topics that message
    # and conversation requests remove (their daily aggregates are rebuilt): bounded by tonight's
    # requests, so collected.
    counts = [
        spark.read.format("delta")
        .load(table.path(cfg.warehouse))
        .alias("t")
        .join(F.broadcast(source.alias("s")), F.expr(condition), "inner")
        .groupBy("s.request_id")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.collect_set(
                F.when(
                    F.col("s.scope").isin(*ID_SCOPES),
                    F.col("t.signal_date") if table is t.CHAT_TOPICS else F.lit(None).cast("date"),
                )
            ),
        )
        .toDF("request_id", "n", "dates")
        .select(F.lit(table.qualified).alias("table"), "*")
        for table, source, condition in targets
    ]
    hits = functools.reduce(DataFrame.unionByName, counts).collect() if counts else []
    removed = {r.request_id: {} for r in tonight}
    for row in hits:
        removed[row.request_id][row.table] = row.n
    chat_dates: set[dt.date] = {d for row in hits for d in row.dates}
    touched = {row.table for row in hits}
    for table, source, condition in targets:
        if table.qualified not in touched:  # nothing of tonight's requests in this table: no commit
            continue
        # A MERGE joined on columns, not DELETE ... IN (ids): the commit log keeps a DELETE's
        # predicate with its literals, so the erased ids would outlive the rows in _delta_log.
        merge_into(source, table.path(cfg.warehouse), condition, "WHEN MATCHED THEN DELETE")
    applied_at = dt.datetime.now(dt.timezone.utc)  # after every delete commit: maintenance's VACUUM clock
    entries = spark.createDataFrame(
        [
            (
                r.request_id,
                r.user_key,
                r.scope,
                r.target_id if r.scope in ID_SCOPES else None,
                logical_date,
                run_id,
                applied_at,
                removed[r.request_id],
                None,
            )
            for r in tonight
        ],
        t.ERASURE_LOG.schema,
    )
    if not delta_exists(log_path):
        replace_partition(entries, t.ERASURE_LOG, cfg.warehouse, {"received_date": logical_date})
    else:  # a re-run adds what it removed (usually nothing) and keeps the run that first applied it;
        # if it removed anything, the purge clock restarts from its commits
        removed_again = "aggregate(map_values(s.rows_removed), 0L, (acc, n) -> acc + n) > 0"
        merge_into(
            entries,
            log_path,
            "t.request_id = s.request_id",
            "WHEN MATCHED THEN UPDATE SET "
            "rows_removed = map_zip_with(t.rows_removed, s.rows_removed, "
            "(k, a, b) -> coalesce(a, 0) + coalesce(b, 0)), "
            f"applied_at = CASE WHEN {removed_again} THEN s.applied_at ELSE t.applied_at END, "
            f"purged_on = CASE WHEN {removed_again} THEN NULL ELSE t.purged_on END "
            "WHEN NOT MATCHED THEN INSERT *",
        )
    return [
        {"request_id": r.request_id, "scope": r.scope, "rows_removed": sum(removed[r.request_id].values())}
        for r in tonight
    ], chat_dates


def withdraw_chat_signals(spark, cfg: Config, d: dt.date) -> int:
    """Users who objected to chat-derived ads tonight (a preference change ingested on `d` leaving
    `ai_chat_ads` false in the state of `d`, in a region that honours it) lose every chat signal
    already stored: their rows in silver.chat_topics and the chat part of silver.daily_signals, on
    every date (SPEC: "past ones too"). Snapshots already published stay as they were: the
    objection is not retroactive. Returns the number of such users."""
    prefs_path, state_path = t.AD_PREFERENCES.path(cfg.warehouse), t.USER_STATE.path(cfg.warehouse)
    if not (delta_exists(prefs_path) and delta_exists(state_path)):
        return 0
    honouring = [name for name, p in cfg.regions.items() if p.honor_chat_opt_out]
    changed = (
        spark.read.format("delta")
        .load(prefs_path)
        .where(F.col("ingest_date") == F.lit(d))
        .select("user_key")
        .distinct()
    )
    users = (
        spark.read.format("delta")
        .load(state_path)
        .where((F.col("state_date") == F.lit(d)) & ~F.col("ai_chat_ads") & F.col("region").isin(honouring))
        .join(changed, "user_key", "left_semi")
        .select("user_key")
        .localCheckpoint(eager=True)
    )
    count = users.count()
    if not count:
        return 0
    for table in (t.CHAT_TOPICS, t.DAILY_SIGNALS):
        if delta_exists(table.path(cfg.warehouse)):
            clause = Clause(("withdrawn",), ((table.user_key, "user_key"),), table.chat_rows)
            merge_into(
                users.select("user_key", F.lit("withdrawn").alias("scope")),
                table.path(cfg.warehouse),
                clause.condition(),
                "WHEN MATCHED THEN DELETE",
            )
    return count
