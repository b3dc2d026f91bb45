"""Retention and purge dates, on tiny Delta tables: text is kept exactly the configured number of
days, and an erasure is marked purged only by a VACUUM whose cut-off came after its commits."""

import datetime as dt

from jobs import tables as t
from jobs.io import replace_partition
from jobs.ops import maintenance

TODAY = dt.date(2026, 2, 1)


def test_chat_text_is_kept_exactly_the_retention_days(spark, make_cfg):
    cfg = make_cfg()
    days = cfg.retention.chat_text_retention_days
    assert days == 30
    rows = [(f"m{age}", "k" * 64, "some text", TODAY - dt.timedelta(days=age)) for age in (days + 1, days, days - 1, 0)]
    frame = spark.createDataFrame(rows, "message_id string, user_key string, text string, ingest_date date")
    frame.write.format("delta").partitionBy("ingest_date").save(t.CHAT_MESSAGES.path(cfg.warehouse))
    assert maintenance.expire_text(spark, cfg, TODAY) == 2
    kept = {
        r.message_id: r.text for r in spark.read.format("delta").load(t.CHAT_MESSAGES.path(cfg.warehouse)).collect()
    }
    # ingested on day X: kept on X .. X+29, gone on X+30
    assert kept == {f"m{days + 1}": None, f"m{days}": None, f"m{days - 1}": "some text", "m0": "some text"}


def test_an_erasure_is_marked_purged_only_after_a_vacuum_cut_off_later_than_its_commits(spark, make_cfg):
    cfg = make_cfg()
    cut_off = dt.datetime(2026, 1, 27, 4, 0, tzinfo=dt.timezone.utc)  # a VACUUM's start minus its retention
    log = [
        (f"r{i}", "k" * 64, "account", None, dt.date(2026, 1, 26), "run", applied, {}, None)
        for i, applied in enumerate([cut_off - dt.timedelta(minutes=1), cut_off + dt.timedelta(minutes=1)])
    ]
    frame = spark.createDataFrame(log, t.ERASURE_LOG.schema)
    replace_partition(frame, t.ERASURE_LOG, cfg.warehouse, {"received_date": dt.date(2026, 1, 26)})
    assert maintenance.mark_purged(spark, cfg, TODAY, cut_off) == 1
    purged = {
        r.request_id: r.purged_on
        for r in spark.read.format("delta")
        .load(t.ERASURE_LOG.path(cfg.warehouse))
        .select("request_id", "purged_on")
        .collect()
    }
    assert purged == {"r0": TODAY, "r1": None}
