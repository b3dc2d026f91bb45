"""Privacy requests, applied every night before signals are built.

Erasure scopes: `message` (message_id), `conversation` (conversation_id), `all_chats` (the user's
chat data) and `account` (everything of the user). The night's requests delete from every table
holding the user's data; any known request also works as a tombstone at ingest, so data arriving
later for an erased message, conversation or user is dropped (and counted as `erased`).
Past gold snapshots lose the user's rows for any scope: they may derive from the erased data.
"""
from __future__ import annotations

import datetime as dt

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, functions as F

from jobs import tables as t
from jobs.config import Config
from jobs.io import delta_exists, replace_partition

# table -> [(column, scopes matched on it)]; dataset filter for quarantine chat-only scopes.
CHAT_SCOPES = ("all_chats", "account")
MATCHES = {
    t.CHAT_MESSAGES: [("message_id", ("message",)), ("conversation_id", ("conversation",)), ("user_key", CHAT_SCOPES)],
    t.ENGAGEMENT_EVENTS: [("user_key", ("account",))],
    t.USER_PROFILES: [("user_key", ("account",))],
    t.AD_PREFERENCES: [("user_key", ("account",))],
    t.QUARANTINE: [("record_id", ("message",)), ("conversation_id", ("conversation",)), ("user_key", ("account",))],
    t.CHAT_TOPICS: [("message_id", ("message",)), ("conversation_id", ("conversation",)), ("user_key", CHAT_SCOPES)],
    t.DAILY_SIGNALS: [("user_key", ("account",))],
    t.USER_INTERESTS: [("user_key", ("message", "conversation", "all_chats", "account"))],
    t.AUDIENCE_SEGMENTS: [("user_key", ("message", "conversation", "all_chats", "account"))],
    t.SEGMENTS_STAGING: [("user_key", ("message", "conversation", "all_chats", "account"))],
}
# Tonight's snapshot of these is rebuilt after this stage from cleaned silver: only past ones are purged.
REBUILT_TONIGHT = {t.USER_INTERESTS: "snapshot_date", t.AUDIENCE_SEGMENTS: "snapshot_date",
                   t.SEGMENTS_STAGING: "snapshot_date"}


def targets(requests: DataFrame) -> DataFrame:
    """request_id, scope, value: what each request matches (ids, or the user_key)."""
    return requests.select("request_id", "scope", F.when(F.col("scope").isin("message", "conversation"),
                                                          F.col("target_id")).otherwise(F.col("user_key"))
                           .alias("value"))


def tombstone_filter(frame: DataFrame, requests: DataFrame, id_col: str | None, conv_col: str | None,
                     chat_data: bool) -> DataFrame:
    """Mark rows of `frame` that any known request erases: adds boolean `_erased`."""
    tomb = targets(requests)
    marks = []
    def mark(col, scopes, name):
        keys = tomb.where(F.col("scope").isin(*scopes)).select(F.col("value").alias(col)).distinct()
        return keys.select(col, F.lit(True).alias(name))
    out = frame
    for col, scopes, name in (
            (id_col, ("message",), "_e1"), (conv_col, ("conversation",), "_e2"),
            ("user_key", CHAT_SCOPES if chat_data else ("account",), "_e3")):
        if col is None:
            continue
        out = out.join(F.broadcast(mark(col, scopes, name)), on=col, how="left")
        marks.append(name)
    erased = F.lit(False)
    for name in marks:
        erased = erased | F.coalesce(F.col(name), F.lit(False))
    return out.select("*", erased.alias("_erased")).drop(*marks)


def rebuild_chat_daily(spark, cfg: Config, signal_date: dt.date) -> None:
    """Re-aggregate one date's chat part of silver.daily_signals from silver.chat_topics."""
    from jobs.silver.signals import daily_signals
    if not delta_exists(spark, t.DAILY_SIGNALS.path(cfg.warehouse)):
        return
    topics = spark.read.format("delta").load(t.CHAT_TOPICS.path(cfg.warehouse)).where(
        F.col("signal_date") == F.lit(signal_date))
    empty = spark.createDataFrame([], "user_key string, topic string, event_type string, signal_date date")
    daily = daily_signals(topics, empty, cfg.engagement_weights, cfg.chat_turn_weight, cfg.daily_cap_per_topic)
    replace_partition(daily, t.DAILY_SIGNALS, cfg.warehouse, {"signal_date": signal_date, "source": "chat"})


def apply_erasures(spark, cfg: Config, logical_date: dt.date, run_id: str) -> list[dict]:
    """Delete what the night's requests target from every table; log each request."""
    req_path = t.ERASURE_REQUESTS.path(cfg.warehouse)
    if not delta_exists(spark, req_path):
        return []
    requests = (spark.read.format("delta").load(req_path)
                .where(F.col("ingest_date") == F.lit(logical_date)))
    # The night's requests are few (a person's request each): collecting them is bounded.
    tonight = targets(requests).collect()
    if not tonight:
        return []
    removed = {r.request_id: {} for r in tonight}
    chat_dates = []
    for table, matches in MATCHES.items():
        path = table.path(cfg.warehouse)
        if not delta_exists(spark, path):
            continue
        frame = spark.read.format("delta").load(path)
        if table in REBUILT_TONIGHT:
            frame = frame.where(F.col(REBUILT_TONIGHT[table]) < F.lit(logical_date))
        condition = F.lit(False)
        deletes = []
        for column, scopes in matches:
            values = sorted({r.value for r in tonight if r.scope in scopes and r.value})
            if not values:
                continue
            hit = F.col(column).isin(values)
            extra = ""
            if table is t.QUARANTINE and scopes == ("message",):
                hit = hit & (F.col("dataset") == "chat_messages")
                extra = " AND t.dataset = 'chat_messages'"
            if table in REBUILT_TONIGHT:
                extra += f" AND t.{REBUILT_TONIGHT[table]} < '{logical_date}'"
            deletes.append((column, values, extra))
            condition = condition | hit
            per_request = (frame.where(hit).join(
                F.broadcast(spark.createDataFrame([(r.request_id, r.value) for r in tonight if r.scope in scopes],
                                                  f"request_id string, {column} string")),
                on=column, how="inner").groupBy("request_id").count().collect())
            for row in per_request:
                removed[row.request_id][table.qualified] = removed[row.request_id].get(table.qualified, 0) + row["count"]
        if table is t.CHAT_TOPICS:  # the chat part of those dates' daily aggregates is rebuilt below
            chat_dates = [r.signal_date for r in frame.where(condition).select("signal_date").distinct().collect()]
        # One MERGE against the ids, not DELETE ... IN (ids): the commit log keeps a DELETE's predicate
        # with its literals, so the erased ids would outlive the rows in _delta_log.
        if deletes:
            ids = F.broadcast(spark.createDataFrame(
                [(column, v) for column, values, _ in deletes for v in values], "id_column string, id string"))
            match = " OR ".join(f"(s.id_column = '{column}' AND t.{column} = s.id{extra})"
                                for column, _, extra in deletes)
            DeltaTable.forPath(spark, path).alias("t").merge(ids.alias("s"), match).whenMatchedDelete().execute()
    for signal_date in chat_dates:
        rebuild_chat_daily(spark, cfg, signal_date)
    log = [(r.request_id, r.scope, r.value if r.scope in ("message", "conversation") else None,
            logical_date, run_id, removed[r.request_id]) for r in tonight]
    frame = spark.createDataFrame(log, "request_id string, scope string, target_id string, received_date date, "
                                       "applied_run string, rows_removed map<string,long>")
    user_keys = requests.select("request_id", "user_key")
    entries = (frame.join(user_keys, on="request_id", how="left")
               .select("request_id", "user_key", "scope", "target_id", "received_date", "applied_run",
                       "rows_removed", F.lit(None).cast("date").alias("purged_on")))
    log_path = t.ERASURE_LOG.path(cfg.warehouse)
    if not delta_exists(spark, log_path):
        replace_partition(entries, t.ERASURE_LOG, cfg.warehouse, {"received_date": logical_date})
    else:  # a re-run adds what it removed (usually nothing) and keeps the run that first applied it
        (DeltaTable.forPath(spark, log_path).alias("l")
         .merge(entries.alias("e"), "l.request_id = e.request_id")
         .whenMatchedUpdate(set={"rows_removed": "map_zip_with(l.rows_removed, e.rows_removed, "
                                                 "(k, a, b) -> coalesce(a, 0) + coalesce(b, 0))"})
         .whenNotMatchedInsertAll().execute())
    return [{"request_id": r[0], "scope": r[1], "rows_removed": sum(r[5].values())} for r in log]
