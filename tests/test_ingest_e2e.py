"""End to end: generate a small day, run its night twice, deliver a late file, ingest again; read the
tables back with Spark and with an independent reader (Arrow over the Parquet files)."""

import datetime as dt
import re
import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from pyspark.sql import functions as F

from jobs.context import RunContext
from jobs.pipeline import run_date, run_stage
from jobs.progress import Progress
from jobs.sample import corpus
from jobs.sample.generate import GenerateOptions, generate, make_users
from jobs.tables import ALL_TABLES, CHAT_MESSAGES, INGEST_RECONCILIATION, QUARANTINE, RUN_LOGS, VALIDATION_RESULTS

pytestmark = pytest.mark.slow
DAY = dt.date(2025, 12, 16)
OPTS = GenerateOptions(
    start=DAY, days=1, messages_per_day=3000, seed=11, bad_rate=0.03, duplicate_rate=0.03, late_rate=0.1
)


def _snapshot(spark, cfg):
    """Every table's rows as a sorted list of tuples (minus run bookkeeping: ids and wall-clock times)."""
    out = {}
    for table in ALL_TABLES:
        if table in RUN_LOGS:  # each run adds its own rows
            continue
        if not (Path(table.path(cfg.warehouse)) / "_delta_log").is_dir():
            continue
        frame = (
            spark.read.format("delta")
            .load(table.path(cfg.warehouse))
            .drop("run_id", "applied_run", "applied_at", "published_at", "publication_id")
        )
        out[table.qualified] = sorted(map(tuple, frame.collect()), key=repr)
    return out


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    from jobs.config import load_config

    root = tmp_path_factory.mktemp("e2e")
    cfg = load_config(profile="test", landing=root / "landing", warehouse=root / "warehouse")
    topic_ids = [t.topic_id for t in cfg.targetable_topics]
    manifest = generate(cfg.landing, OPTS, topic_ids)[0]
    # Erasures have their own end-to-end test; here every landing row must match the generator's plan.
    shutil.rmtree(cfg.landing / "erasure_requests")
    del manifest["datasets"]["erasure_requests"]
    chat_dir = cfg.landing / "chat_messages" / f"date={DAY}"
    held_back = root / "late-00001.jsonl.gz"
    shutil.move(chat_dir / "late-00001.jsonl.gz", held_back)
    progress = Progress(quiet=True)
    first = run_date(spark, cfg, DAY, progress)
    snap_first = _snapshot(spark, cfg)
    second = run_date(spark, cfg, DAY, progress)
    snap_second = _snapshot(spark, cfg)
    shutil.move(held_back, chat_dir / "late-00001.jsonl.gz")
    # A late file changes what ingest writes: its stage and gate take it in.
    with_late = {"ingest": run_stage(RunContext.start(spark, cfg, DAY, progress), "ingest")}
    snap_late = _snapshot(spark, cfg)
    return dict(
        cfg=cfg,
        manifest=manifest,
        runs=[first, second, with_late],
        snaps=[snap_first, snap_second, snap_late],
        topic_ids=topic_ids,
    )


def _chat_counts(run):
    return next(r for r in run["ingest"]["datasets"] if r["dataset"] == "chat_messages")


def test_rerunning_a_date_changes_no_table(ingested):
    first, second, _ = ingested["snaps"]
    assert first == second


def test_late_file_is_picked_up_without_duplicating_what_was_taken(ingested):
    first, late = ingested["snaps"][0], ingested["snaps"][2]
    before = {row[0] for row in first["bronze.chat_messages"]}
    after = [row[0] for row in late["bronze.chat_messages"]]
    assert len(after) == len(set(after)), "message_id must stay unique in bronze"
    assert before < set(after)
    planned = ingested["manifest"]["datasets"]["chat_messages"]
    assert _chat_counts(ingested["runs"][0])["read"] == planned["lines"] - planned["late_lines"]


def test_counts_reconcile_against_the_generators_plan(spark, ingested):
    """Every count of the reconciliation equals what the generator planted, and the rows read back
    from bronze and quarantine are those counts (not the sum that defines `read`)."""
    cfg = ingested["cfg"]
    recon = {
        r.dataset: r
        for r in spark.read.format("delta")
        .load(INGEST_RECONCILIATION.path(cfg.warehouse))
        .where(F.col("ingest_date") == F.lit(DAY))
        .collect()
    }
    quarantined = dict(
        spark.read.format("delta")
        .load(QUARANTINE.path(cfg.warehouse))
        .where(F.col("ingest_date") == F.lit(DAY))
        .groupBy("dataset")
        .count()
        .collect()
    )
    for counts in ingested["runs"][2]["ingest"]["datasets"]:
        name = counts["dataset"]
        if name not in ingested["manifest"]["datasets"]:
            assert counts["read"] == 0
            continue
        plan = ingested["manifest"]["datasets"][name]
        planted_bad = sum(n for k, n in plan["planted"].items() if k != "duplicate")
        duplicates = plan["planted"].get("duplicate", 0)
        table = next(x for x in ALL_TABLES if x.layer == "bronze" and x.name == name)
        bronze_rows = (
            spark.read.format("delta").load(table.path(cfg.warehouse)).where(F.col("ingest_date") == F.lit(DAY)).count()
        )
        assert (recon[name].landing_rows, recon[name].quarantined, recon[name].duplicates, recon[name].erased) == (
            plan["lines"],
            planted_bad,
            duplicates,
            0,
        ), name
        assert bronze_rows == recon[name].accepted == plan["lines"] - planted_bad - duplicates, name
        assert quarantined.get(name, 0) == planted_bad, name


def test_quarantine_reasons_match_the_planted_bad_rows(spark, ingested):
    cfg = ingested["cfg"]
    reasons = dict(
        spark.read.format("delta")
        .load(QUARANTINE.path(cfg.warehouse))
        .where(F.col("dataset") == "chat_messages")
        .groupBy("reason")
        .count()
        .collect()
    )
    planted = {
        k: v for k, v in ingested["manifest"]["datasets"]["chat_messages"]["planted"].items() if k != "duplicate"
    }
    assert reasons == planted


def _parquet_rows(path: str) -> list[dict]:
    """Every row of every Parquet data file under a table's folder, read by Arrow, not Delta (rows
    a deletion vector hides and files no version references count too; `_delta_log` is skipped)."""
    files = [str(f) for f in Path(path).rglob("*.parquet") if "_delta_log" not in f.parts]
    return ds.dataset(files, format="parquet").to_table().to_pylist()  # the files' own columns


def test_independent_reader_sees_no_raw_user_id_nor_planted_pii(ingested):
    cfg = ingested["cfg"]
    raw_ids = re.compile("|".join(re.escape(u.user_id) for u in make_users(OPTS, ingested["topic_ids"])))
    planted_pii = corpus.PHONES + corpus.CARDS + corpus.IBANS + ["mail@example.org"]
    for table in ALL_TABLES:
        if table is VALIDATION_RESULTS:  # a log: each run adds its own results
            continue
        if not (Path(table.path(cfg.warehouse)) / "_delta_log").is_dir():
            continue
        data = _parquet_rows(table.path(cfg.warehouse))
        assert data or table.layer not in ("bronze", "quarantine") or table.name == "erasure_requests", (
            table.qualified
        )  # erasures were taken out of this day's landing above
        for row in data:
            for value in row.values():
                if isinstance(value, str):
                    assert not raw_ids.search(value), f"raw user_id in {table.qualified}: {value}"
                    assert not any(p in value for p in planted_pii), f"PII in {table.qualified}: {value}"
    bronze = _parquet_rows(CHAT_MESSAGES.path(cfg.warehouse))
    assert any(row["pii_redacted"] for row in bronze), "generator planted PII"
    assert all(
        "[" not in row["text"] or any(p in row["text"] for p in ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]"))
        for row in bronze
    )


def test_erasure_and_profile_datasets_land_in_bronze(spark, ingested):
    cfg = ingested["cfg"]
    plan = ingested["manifest"]["datasets"]
    for name in ("user_profiles", "ad_preferences"):
        table = next(t for t in ALL_TABLES if t.name == name)
        assert spark.read.format("delta").load(table.path(cfg.warehouse)).count() == plan[name]["lines"]
