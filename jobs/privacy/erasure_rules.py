"""Privacy requests, applied every night before signals are built.

Erasure scopes, each written once here and applied to every table by its personal-data declaration
(jobs/tables.py):
- `account`: every row keyed by the user, in every table (the request record itself excepted);
- `all_chats`: the user's chat rows (a table's `chat_rows`), and the user's rows in derived tables;
- `message` / `conversation`: rows holding the target id *and* the requesting user's key (a user
  erases only their own chats), the user's rows in derived tables, and the chat part of the daily
  aggregates of the dates those rows fed (rebuilt);
- tables without a user key (sensitive conversations) lose the conversations the user owns.
Derived tables (interests, segments): a request applied for the first time removes the user from
every snapshot then stored (each was built before the request was known, so may derive from the
erased data; also after a late request file is re-run for an earlier date); the night's snapshot
is rebuilt from cleaned data. Snapshots dated before a request never hold its user again: a re-run
of such a date leaves the user out (`requested_after`), as the first run followed by the erasure
did, and re-applying a logged request touches only those.
Any known request also works as a tombstone at ingest (`tombstone_filter`), so data arriving
later for an erased message, conversation or account is dropped (and counted as `erased`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import tables as t

SCOPES = ("message", "conversation", "all_chats", "account")
CHAT_SCOPES = ("all_chats", "account")  # scopes that cover every chat row of the user
ID_SCOPES = {"message": "message_id", "conversation": "conversation_id"}
OWNED, REQUESTS = "owned_conversations", "requests"


@dataclass(frozen=True)
class Clause:
    """Rows of a table (alias t) that requests (alias s) of `scopes` erase: equalities plus a filter."""

    scopes: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]  # (table column, request column) that must be equal
    rows: str | None = None  # extra condition on the table's rows
    source: str = REQUESTS  # requests, or the conversations each request's user owns

    def condition(self) -> str:
        parts = [f"t.`{a}` = s.`{b}`" for a, b in self.pairs]
        parts.append("s.scope IN (" + ", ".join(f"'{x}'" for x in self.scopes) + ")")
        if self.rows and self.rows != t.ALL_ROWS:
            parts.append(f"({self.rows})")
        return " AND ".join(parts)


def clauses(table: t.Table) -> list[Clause]:
    """What each scope erases in `table`, from its declaration (the only place scopes get meaning)."""
    if table.erasure_record:
        return []
    key = table.user_key
    if key is None:
        return (
            [Clause(SCOPES, ((table.conversation_id, "conversation_id"),), source=OWNED)]
            if table.conversation_id
            else []
        )
    if table.derived:
        return [Clause(SCOPES, ((key, "user_key"),), f"s.first_time OR t.`{table.partition_by[0]}` < s.received_date")]
    found = [Clause(("account",), ((key, "user_key"),))]
    if table.chat_rows:
        found.append(Clause(("all_chats",), ((key, "user_key"),), table.chat_rows))
        for scope, attribute in ID_SCOPES.items():
            column = getattr(table, attribute)
            if column:
                found.append(Clause((scope,), ((column, "target_id"), (key, "user_key")), table.chat_rows))
    return found


def tombstone_filter(
    frame: DataFrame, requests: DataFrame, id_col: str | None, conv_col: str | None, chat_data: bool
) -> DataFrame:
    """Mark rows of `frame` (with `user_key`) that any known request erases: adds boolean `_erased`.
    Message and conversation requests cover only the requesting user's rows."""
    marks = []
    out = frame
    for col, scopes, name, by_id in (
        (id_col, ("message",), "_e1", True),
        (conv_col, ("conversation",), "_e2", True),
        ("user_key", CHAT_SCOPES if chat_data else ("account",), "_e3", False),
    ):
        if col is None:
            continue
        wanted = requests.where(F.col("scope").isin(*scopes) & F.col("user_key").isNotNull())
        keys = wanted.select(F.col("target_id").alias(col), "user_key") if by_id else wanted.select("user_key")
        keys = keys.where(F.col(col).isNotNull()).distinct().select("*", F.lit(True).alias(name))
        out = out.join(F.broadcast(keys), on=[col, "user_key"] if by_id else ["user_key"], how="left")
        marks.append(name)
    erased = F.lit(False)
    for name in marks:
        erased = erased | F.coalesce(F.col(name), F.lit(False))
    return out.select("*", erased.alias("_erased")).drop(*marks)
