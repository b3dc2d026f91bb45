"""Every table's personal-data declaration (jobs/tables.py) is complete, and erasure covers every
scope that applies to each table from it."""

import datetime as dt
import itertools
from pathlib import Path

import pytest

from jobs import tables as t
from jobs.privacy.erasure_rules import OWNED, SCOPES, clauses

# Column names that hold personal data wherever they appear (a key, a chat id, text, a raw record).
PERSONAL_NAMES = {"user_key", "message_id", "conversation_id", "record_id", "text", "query_text", "raw_redacted"}


def applicable_scopes(table: t.Table) -> set[str]:
    """The scopes that must reach a table, from SPEC section 7 and what the table declares."""
    if table.erasure_record or not table.personal_columns:
        return set()
    if table.derived:
        return set(SCOPES)  # every snapshot may derive from any erased chat
    scopes = {"account"} if table.user_key else set()
    if table.chat_rows:
        scopes |= {"all_chats", "account"}
        scopes |= {"message"} if table.message_id else set()
        scopes |= {"conversation"} if table.conversation_id else set()
    return scopes


@pytest.mark.parametrize("table", t.ALL_TABLES, ids=lambda x: x.qualified)
def test_every_table_holding_personal_data_is_covered_by_every_scope_that_applies(table):
    covered = {scope for clause in clauses(table) for scope in clause.scopes}
    assert applicable_scopes(table) <= covered, table.qualified
    for clause in clauses(table):
        columns = {a for a, _ in clause.pairs}
        assert columns <= set(table.personal_columns), f"{table.qualified} erases by undeclared {columns}"
        if clause.source == OWNED:
            assert table.user_key is None, "keyed tables are matched on the key, not on owned ids"


@pytest.mark.slow
def test_every_written_table_is_declared_with_all_its_personal_columns(spark, two_nights):
    """After two real nights: every Delta table under the warehouse has a home in jobs/tables.py,
    and every column with a personal name is declared as such."""
    warehouse = Path(two_nights["cfg"].warehouse)
    declared = {(x.layer, x.name): x for x in t.ALL_TABLES}
    on_disk = {(p.parent.parent.name, p.parent.name) for p in warehouse.glob("*/*/_delta_log")}
    assert on_disk - set(declared) == set()
    assert {
        ("bronze", "chat_messages"),
        ("silver", "sensitive_conversations"),
        ("gold", "audience_segments"),
    } <= on_disk
    for key in sorted(on_disk):
        table = declared[key]
        columns = set(spark.read.format("delta").load(table.path(warehouse)).columns)
        undeclared = (columns & PERSONAL_NAMES) - set(table.personal_columns)
        assert undeclared == set(), f"{table.qualified}: {sorted(undeclared)}"
        assert set(table.personal_columns) <= columns, f"{table.qualified} declares columns it lacks"


def test_every_commit_of_a_night_names_the_run_that_made_it(spark, two_nights):
    """DESCRIBE HISTORY tells which run wrote a version: each table's commits carry the id of the
    night that made them (userMetadata). Read from the copy kept after the first night and from the
    versions the second night added next (other tests write later versions of the shared warehouse)."""
    from delta.tables import DeltaTable

    def labels(warehouse):
        seen = {}
        for log in sorted(Path(warehouse).glob("*/*/_delta_log")):
            history = DeltaTable.forPath(spark, str(log.parent)).history().orderBy("version").collect()
            seen[f"{log.parent.parent.name}.{log.parent.name}"] = [h.userMetadata for h in history]
        return seen

    second = f"audience run {two_nights['first']['run_id']}"
    after_first, now = labels(two_nights["after_d1"]), labels(two_nights["cfg"].warehouse)
    first_night = {label for seen in after_first.values() for label in seen}
    assert len(first_night) == 1 and first_night != {second}, first_night
    assert next(iter(first_night)).startswith("audience run ")
    assert all(label and label.startswith("audience run ") for seen in now.values() for label in seen)
    for table in ("bronze.chat_messages", "silver.daily_signals", "gold.segment_catalog"):
        kept = len(after_first[table])
        assert now[table][:kept] == after_first[table], table
        assert now[table][kept] == second, table


def test_a_write_that_differs_from_the_declared_schema_is_refused(spark, tmp_path):
    from jobs.errors import AudienceError
    from jobs.io import replace_partition

    # a column retyped (landing_rows as string) and one renamed (run -> run_id missing)
    frame = spark.createDataFrame(
        [(dt.date(2025, 12, 16), "chat_messages", "10", 9, 1, 0, 0, "r1")],
        "ingest_date date, dataset string, landing_rows string, accepted bigint, quarantined bigint, "
        "duplicates bigint, erased bigint, run string",
    )
    with pytest.raises(AudienceError) as err:
        replace_partition(frame, t.INGEST_RECONCILIATION, tmp_path, {"ingest_date": dt.date(2025, 12, 16)})
    assert "landing_rows: declared bigint, written string" in str(err.value)
    assert "run_id: declared string, written absent" in str(err.value)
    assert not (tmp_path / "quality").exists(), "nothing written"


def test_sql_literals_reach_spark_unchanged_whatever_their_quotes_and_backslashes(spark):
    """Conf values (countries, topics, region names) and regexes are inlined into SQL text."""
    from jobs.io import sql_literal

    values = ["Côte d'Ivoire", r"\b[0-9]{3}\b", "ends with \\", "it\\'s", "plain"]
    assert spark.sql(f"SELECT array{sql_literal(values)} AS v").first().v == values


def test_every_declared_schema_parses_and_names_its_partition_and_personal_columns(spark):
    from pyspark.sql.types import DataType

    for table in t.ALL_TABLES:
        columns = {f.name for f in DataType.fromDDL(table.schema).fields}
        assert set(table.partition_by) <= columns, table.qualified
        assert set(table.personal_columns) <= columns, table.qualified


def test_every_table_and_column_is_documented_for_analysts(spark):
    from pyspark.sql.types import DataType

    for table in t.ALL_TABLES:
        assert len(table.doc) > 20, f"{table.qualified} has no description"
        undocumented = {f.name for f in DataType.fromDDL(table.schema).fields} - set(t.COLUMN_DOCS)
        assert undocumented == set(), f"{table.qualified}: {sorted(undocumented)}"


@pytest.mark.slow
def test_analysts_see_each_tables_description_and_column_comments_where_they_query(spark, two_nights):
    """From the tables a night created: DESCRIBE in a session that registered them (what `audience
    sql` and the JDBC endpoint show), and delta-rs for readers without Spark."""
    import deltalake

    from jobs.session import register_tables

    cfg = two_nights["cfg"]
    for log in sorted(Path(two_nights["after_d1"]).glob("*/*/_delta_log")):
        table = next(x for x in t.ALL_TABLES if (x.layer, x.name) == (log.parent.parent.name, log.parent.name))
        assert deltalake.DeltaTable(str(log.parent)).metadata().description == table.doc, table.qualified
    register_tables(spark, cfg)
    for table in (t.AUDIENCE_SEGMENTS, t.SEGMENT_CATALOG, t.DAILY_SIGNALS, t.QUARANTINE):
        rows = spark.sql(f"DESCRIBE TABLE EXTENDED {table.qualified}").collect()
        columns = itertools.takewhile(lambda r: r.col_name and not r.col_name.startswith("#"), rows)
        comments = {r.col_name: r.comment for r in columns}
        assert comments == {c: t.COLUMN_DOCS[c] for c in comments}, table.qualified
        assert {"user_key", "segment_id", "status", "topic", "reason"} & set(comments)
        assert next(r.data_type for r in rows if r.col_name == "Comment") == table.doc


# (also under a folder whose name SQL must quote: the product names tables by path in its SQL)
@pytest.mark.parametrize("folder", ["warehouse", "team`s 'warehouse'"])
def test_maintenance_documents_a_table_created_before_its_comments_were_declared(spark, tmp_path, folder):
    from jobs.config import load_config
    from jobs.io import delta_at
    from jobs.ops.maintenance import purge

    cfg = load_config(profile="test", warehouse=tmp_path / folder)
    path = t.STAGE_RUNS.path(cfg.warehouse)
    row = [("r1", dt.date(2025, 12, 16), "ingest", dt.datetime(2025, 12, 17, 2, tzinfo=dt.timezone.utc), 1.5, 10)]
    spark.createDataFrame(row, t.STAGE_RUNS.schema).write.format("delta").save(path)  # no comments

    def operations():
        return [h.operation for h in spark.sql(f"DESCRIBE HISTORY {delta_at(path)}").orderBy("version").collect()]

    purge(spark, cfg, t.STAGE_RUNS)
    assert spark.sql(f"DESCRIBE DETAIL {delta_at(path)}").first().description == t.STAGE_RUNS.doc
    fields = spark.read.format("delta").load(path).schema.fields
    assert {f.name: f.metadata.get("comment") for f in fields} == {f.name: t.COLUMN_DOCS[f.name] for f in fields}
    before = operations()
    purge(spark, cfg, t.STAGE_RUNS)  # documented already: only the VACUUM's own entries are added
    added = operations()[len(before) :]
    assert all(op.startswith("VACUUM") for op in added), added


def test_table_paths_keep_an_object_store_uri_as_given_and_make_a_local_folder_absolute(tmp_path, monkeypatch):
    """pathlib folds `s3a://bucket` into `s3a:/bucket` under the working folder: a printed or written
    path of an object-store warehouse must keep its scheme."""
    assert t.AUDIENCE_SEGMENTS.path("s3a://lake/warehouse/") == "s3a://lake/warehouse/gold/audience_segments"
    assert t.under("s3a://lake/warehouse") == "s3a://lake/warehouse"
    monkeypatch.chdir(tmp_path)
    assert t.under("warehouse", "gold") == str(tmp_path / "warehouse" / "gold")
