"""Weekly maintenance on a copy of a real night's warehouse: retention, OPTIMIZE, VACUUM."""
import datetime as dt
import shutil

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jobs import tables as t
from jobs.config import load_config
from jobs.maintenance import run_maintenance
from jobs.progress import Progress

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def maintained(spark, two_nights, tmp_path_factory):
    root = tmp_path_factory.mktemp("maintenance")
    cfg = load_config(profile="test", landing=two_nights["cfg"].landing, warehouse=root / "warehouse")
    shutil.copytree(two_nights["after_d1"], cfg.warehouse)
    before = spark.read.format("delta").load(t.CHAT_MESSAGES.path(cfg.warehouse)).count()
    retention = cfg.retention["chat_text_retention_days"]
    report = run_maintenance(spark, cfg, two_nights["d1"] + dt.timedelta(days=retention + 1), Progress(quiet=True))
    return cfg, before, report


def test_chat_text_past_retention_is_removed_but_rows_stay(spark, maintained):
    cfg, before, _ = maintained
    chat = spark.read.format("delta").load(t.CHAT_MESSAGES.path(cfg.warehouse))
    assert chat.count() == before
    assert chat.where(F.col("text").isNotNull()).count() == 0
    events = spark.read.format("delta").load(t.ENGAGEMENT_EVENTS.path(cfg.warehouse))
    assert events.where(F.col("query_text").isNotNull()).count() == 0


def test_quarantined_rows_past_retention_are_deleted(spark, maintained):
    cfg, _, report = maintained
    assert spark.read.format("delta").load(t.QUARANTINE.path(cfg.warehouse)).count() == 0
    assert next(r["rows"] for r in report if r["step"] == "quarantined rows removed") > 0


def test_every_table_is_vacuumed_and_large_ones_optimized(spark, maintained):
    cfg, _, _ = maintained
    ops = {r.operation for r in DeltaTable.forPath(spark, t.CHAT_MESSAGES.path(cfg.warehouse)).history().collect()}
    assert {"OPTIMIZE", "VACUUM START", "VACUUM END"} <= ops
    ops = {r.operation for r in DeltaTable.forPath(spark, t.SEGMENT_CATALOG.path(cfg.warehouse)).history().collect()}
    assert "VACUUM END" in ops
