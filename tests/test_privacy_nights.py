"""Privacy rules that span nights, on planted inline landing days run for real (Spark + Delta):
a conversation that turns sensitive a night later, re-runs and out-of-order backfills, a late
opt-out, a sensitive engagement topic, and a night re-run under another host time zone."""

import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from jobs import tables as t

pytestmark = pytest.mark.slow
D1, D2 = dt.date(2025, 12, 16), dt.date(2025, 12, 17)
KEY = "nights-test-key"
AS_OF = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # the in-process runs' clock, after every planted time
# Sensitive for the learned model, with no term of the vocabulary: what flags it is the model.
MODEL_ONLY_TEXT = "on est deux mecs et on cherche une idée de demande en mariage discrète"


def _chat(mid, cid, uid, text, sent_at):
    return {
        "message_id": mid,
        "conversation_id": cid,
        "user_id": uid,
        "role": "user",
        "text": text,
        "locale": "fr-FR",
        "country": "FR",
        "surface": "whatsapp",
        "sent_at": sent_at,
    }


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _events(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ["event_id", "user_id", "event_type", "object_id", "object_topic", "query_text", "country", "surface"]
    table = {n: [r.get(n) for r in rows] for n in names}
    table["occurred_at"] = [dt.datetime.fromisoformat(r["occurred_at"]) for r in rows]
    pq.write_table(pa.table(table), path)


def plant(landing):
    """Two days: u-eu's conversation c-turn talks about running on D1 and turns to health on D2."""
    _jsonl(
        landing / "chat_messages" / f"date={D1}" / "part-0.jsonl",
        [
            _chat("m1", "c-turn", "u-eu", "j'adore courir des marathons, quelles chaussures ?", "2025-12-16T10:00:00Z"),
            _chat("m2", "c-ok", "u-eu", "une recette de pâtes pour ce soir ?", "2025-12-16T11:00:00Z"),
            # inside the 6 h tolerance on both edges, and just outside it (quarantined)
            _chat("m3", "c-edge", "u-eu", "un voyage à Lisbonne en train ?", "2025-12-15T18:00:00Z"),
            _chat("m4", "c-edge", "u-eu", "un voyage à Lisbonne en avion ?", "2025-12-17T05:59:59Z"),
            _chat("m5", "c-edge", "u-eu", "un voyage à Porto ?", "2025-12-15T17:59:59Z"),
            _chat("m6", "c-late", "u-late", "le match de foot de ce soir ?", "2025-12-16T12:00:00Z"),
            _chat("m9", "c-late2", "u-late2", "le match de foot de demain ?", "2025-12-16T12:30:00Z"),
            _chat("m20", "c-m1", "u-m", "une recette de pâtes pour ce soir ?", "2025-12-16T13:00:00Z"),
            _chat("m21", "c-m2", "u-m", "j'adore courir des marathons", "2025-12-16T13:30:00Z"),
            _chat("m30", "c-er", "u-er", "une recette de gâteau au chocolat ?", "2025-12-16T14:00:00Z"),
            _chat("m40", "c-model", "u-model", MODEL_ONLY_TEXT, "2025-12-16T15:00:00Z"),
        ],
    )
    _jsonl(
        landing / "chat_messages" / f"date={D2}" / "part-0.jsonl",
        [
            _chat(
                "m7", "c-turn", "u-eu", "mon médecin a changé mon traitement contre le diabète", "2025-12-17T09:00:00Z"
            ),
            _chat("m8", "c-ok2", "u-eu", "une recette de gâteau au chocolat ?", "2025-12-17T10:00:00Z"),
        ],
    )
    for day in (D1, D2):
        _events(
            landing / "engagement_events" / f"date={day}" / "part-0.parquet",
            [
                {
                    "event_id": f"e1-{day}",
                    "user_id": "u-eu",
                    "event_type": "like",
                    "object_id": "o1",
                    "object_topic": "health",
                    "country": "FR",
                    "surface": "instagram",
                    "occurred_at": f"{day}T08:00:00+00:00",
                },
                {
                    "event_id": f"e2-{day}",
                    "user_id": "u-eu",
                    "event_type": "follow",
                    "object_id": "o2",
                    "object_topic": "running",
                    "country": "FR",
                    "surface": "instagram",
                    "occurred_at": f"{day}T08:30:00+00:00",
                },
                *[
                    {
                        "event_id": f"e3-{u}-{day}",
                        "user_id": u,
                        "event_type": "follow",
                        "object_id": "o3",
                        "object_topic": "cooking",
                        "country": "FR",
                        "surface": "instagram",
                        "occurred_at": f"{day}T09:00:00+00:00",
                    }
                    for u in ("u-m", "u-er")
                ],
            ],
        )
    _jsonl(
        landing / "user_profiles" / f"date={D1}" / "part-0.jsonl",
        [
            {"user_id": u, "birth_year": 1980, "country": "FR", "updated_at": "2025-12-16T01:00:00Z"}
            for u in ("u-eu", "u-late", "u-late2", "u-m", "u-er")
        ],
    )
    # An opt-out that reaches the pipeline weeks after it was made: applied all the same; u-late2's
    # arrives a night after the chat it must remove.
    _jsonl(
        landing / "ad_preferences" / f"date={D1}" / "part-0.jsonl",
        [{"user_id": "u-late", "ai_chat_ads": False, "personalized_ads": True, "updated_at": "2025-11-02T09:00:00Z"}],
    )
    _jsonl(
        landing / "ad_preferences" / f"date={D2}" / "part-0.jsonl",
        [{"user_id": "u-late2", "ai_chat_ads": False, "personalized_ads": True, "updated_at": "2025-11-20T09:00:00Z"}],
    )
    # u-m erases one message the night it is sent; u-er erases all chats a night later.
    _jsonl(
        landing / "erasure_requests" / f"date={D1}" / "part-0.jsonl",
        [
            {
                "request_id": "r-m",
                "user_id": "u-m",
                "scope": "message",
                "target_id": "m20",
                "requested_at": "2025-12-16T15:00:00Z",
            }
        ],
    )
    _jsonl(
        landing / "erasure_requests" / f"date={D2}" / "part-0.jsonl",
        [{"request_id": "r-er", "user_id": "u-er", "scope": "all_chats", "requested_at": "2025-12-17T08:00:00Z"}],
    )


def _stages(spark, cfg, day):
    """The nightly stages up to interests, without gates (what these rules live in)."""
    from jobs.context import RunContext
    from jobs.registry import BY_NAME

    ctx = RunContext.start(spark, cfg, day, run_id=f"run-{day}", as_of=AS_OF)
    for stage in ("ingest", "privacy", "signals", "interests"):
        BY_NAME[stage].run(ctx)


@pytest.fixture(scope="module")
def nights(spark, tmp_path_factory, monkeypatch_module):
    from jobs.config import load_config
    from jobs.pipeline import run_date
    from jobs.progress import Progress

    monkeypatch_module.setenv("AUDIENCE_PSEUDONYM_KEY", KEY)
    root = tmp_path_factory.mktemp("nights")
    plant(root / "landing")
    in_order = load_config(profile="test", landing=root / "landing", warehouse=root / "in-order")
    # The first night runs whole (gates, segments, publication) and is kept as it stood: the time-zone
    # test runs the same night in a process with another host zone and compares every table.
    run_date(spark, in_order, D1, Progress(quiet=True), run_id=f"run-{D1}", as_of=AS_OF)
    shutil.copytree(in_order.warehouse, root / "tz-here")
    _stages(spark, in_order, D2)
    _stages(spark, in_order, D1)  # a re-run of the earlier night
    out_of_order = load_config(profile="test", landing=root / "landing", warehouse=root / "out-of-order")
    _stages(spark, out_of_order, D2)
    _stages(spark, out_of_order, D1)
    return {"root": root, "in_order": in_order, "out_of_order": out_of_order}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _read(spark, cfg, table):
    return spark.read.format("delta").load(table.path(cfg.warehouse))


@pytest.mark.parametrize("order", ["in_order", "out_of_order"])
def test_a_conversation_that_turns_sensitive_later_yields_no_signal_on_any_night(spark, nights, order):
    cfg = nights[order]
    topics = _read(spark, cfg, t.CHAT_TOPICS)
    assert topics.where(F.col("conversation_id") == "c-turn").count() == 0
    # the other conversations of the same user still count, so the rule is not blind suppression
    assert {r.conversation_id for r in topics.collect()} >= {"c-ok", "c-ok2"}
    flagged = [(r.conversation_id, r.flagged_date) for r in _read(spark, cfg, t.SENSITIVE_CONVERSATIONS).collect()]
    assert sorted(flagged) == [("c-model", D1), ("c-turn", D2)]  # c-model: flagged by the learned model


def test_the_daily_chat_aggregate_of_the_earlier_night_loses_the_conversation(spark, nights):
    cfg = nights["in_order"]
    daily = _read(spark, cfg, t.DAILY_SIGNALS).where(
        (F.col("signal_date") == F.lit(D1)) & (F.col("source") == "chat") & (F.col("user_key") == _key("u-eu"))
    )
    assert "running" not in {r.topic for r in daily.collect()}
    assert "cooking" in {r.topic for r in daily.collect()}


def test_a_late_opt_out_is_applied_and_its_user_yields_no_chat_topics(spark, nights):
    cfg = nights["in_order"]
    state = _read(spark, cfg, t.USER_STATE).where(F.col("state_date") == F.lit(D1))
    late = [r for r in state.collect() if r.ai_chat_ads is False]
    assert len(late) == 1
    assert _read(spark, cfg, t.CHAT_TOPICS).where(F.col("user_key") == late[0].user_key).count() == 0
    assert _read(spark, cfg, t.QUARANTINE).where(F.col("dataset") == "ad_preferences").count() == 0


def _key(user_id):
    return hmac.new(KEY.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("order", ["in_order", "out_of_order"])
def test_an_opt_out_delivered_a_night_later_removes_earlier_chat_signals_and_reruns_keep_them_out(spark, nights, order):
    cfg = nights[order]
    for table in (t.CHAT_TOPICS, t.DAILY_SIGNALS):
        rows = _read(spark, cfg, table).where(F.col("user_key") == _key("u-late2"))
        assert rows.where(F.col("signal_date") == F.lit(D1)).count() == 0, table.qualified
    # the rule keys on the right user: u-eu's chats of the same night stay
    assert _read(spark, cfg, t.CHAT_TOPICS).where(F.col("user_key") == _key("u-eu")).count() > 0


@pytest.mark.parametrize("order", ["in_order", "out_of_order"])
def test_snapshots_dated_before_a_request_never_hold_its_user_even_when_rerun(spark, nights, order):
    cfg = nights[order]
    interests = _read(spark, cfg, t.USER_INTERESTS)
    assert interests.where((F.col("user_key") == _key("u-er")) & (F.col("snapshot_date") == F.lit(D1))).count() == 0
    if order == "in_order":  # (out of order, D2 ran before u-er's profile of D1 existed)
        # from the request's night on, snapshots are built from cleaned data: engagement still counts
        after = interests.where((F.col("user_key") == _key("u-er")) & (F.col("snapshot_date") == F.lit(D2))).collect()
        assert [(r.topic, r.chat_score) for r in after] == [("cooking", 0.0)]


def test_re_running_the_night_of_a_request_leaves_later_snapshots_alone(spark, nights):
    """u-m's message request of D1 is applied again by the re-run of D1: the D2 snapshot, built
    after the request from cleaned data, keeps u-m."""
    interests = _read(spark, nights["in_order"], t.USER_INTERESTS)
    later = interests.where((F.col("user_key") == _key("u-m")) & (F.col("snapshot_date") == F.lit(D2)))
    assert {r.topic for r in later.collect()} == {"cooking", "running"}
    topics = _read(spark, nights["in_order"], t.CHAT_TOPICS)
    assert topics.where(F.col("message_id") == "m20").count() == 0


def test_a_sensitive_engagement_topic_is_not_stored_beside_the_key(spark, nights):
    cfg = nights["in_order"]
    events = {
        r.event_id: r.object_topic
        for r in _read(spark, cfg, t.ENGAGEMENT_EVENTS).where(F.col("user_key") == _key("u-eu")).collect()
    }
    assert events == {f"e1-{D1}": None, f"e2-{D1}": "running", f"e1-{D2}": None, f"e2-{D2}": "running"}


def test_the_nightly_job_and_audience_tag_answer_with_the_same_learned_model(spark, nights):
    from jobs.silver.tagger import tag, vocabulary_frame

    cfg = nights["in_order"]
    frame = spark.createDataFrame([("m40", MODEL_ONLY_TEXT, "fr")], "message_id string, text string, language string")
    vocabulary_only = tag(frame, vocabulary_frame(spark, cfg), cfg.languages, cfg.negation_window).first()
    assert list(vocabulary_only.sensitive) == []
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "--profile", "test", "tag"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AUDIENCE_LOG_DIR": str(nights["root"] / "logs")},
        input=json.dumps({"id": "m40", "text": MODEL_ONLY_TEXT, "locale": "fr-FR"}) + "\n",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["sensitive"], "audience tag finds it sensitive"
    flagged = _read(spark, cfg, t.SENSITIVE_CONVERSATIONS).where(F.col("conversation_id") == "c-model")
    assert flagged.count() == 1, "so did the nightly job, which suppressed its conversation"
    assert _read(spark, cfg, t.CHAT_TOPICS).where(F.col("conversation_id") == "c-model").count() == 0


def _tables(spark, warehouse):
    """Every table's rows (minus run ids and wall-clock times)."""
    out = {}
    for table in t.ALL_TABLES:
        if table in t.RUN_LOGS or not (warehouse / table.layer / table.name / "_delta_log").is_dir():
            continue
        frame = (
            spark.read.format("delta")
            .load(table.path(warehouse))
            .drop("run_id", "applied_run", "applied_at", "published_at", "publication_id")
        )
        out[table.qualified] = sorted(map(tuple, frame.collect()), key=repr)
    return out


def test_a_night_run_under_another_host_time_zone_gives_the_same_tables(spark, nights):
    """The same night in this process (the fixture's first, kept as `tz-here`) and in a command-line
    process whose host zone is another one (Los Angeles, or UTC where this process runs in a zone
    with an offset)."""
    root = nights["root"]
    zone = "America/Los_Angeles" if time.localtime().tm_gmtoff == 0 else "UTC"
    env = {**os.environ, "TZ": zone, "AUDIENCE_PSEUDONYM_KEY": KEY, "AUDIENCE_LOG_DIR": str(root / "logs")}
    roots = ["--profile", "test", "--landing", str(root / "landing"), "--warehouse", str(root / "tz-there")]
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", *roots, "run", "--date", str(D1)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    here, there = _tables(spark, root / "tz-here"), _tables(spark, root / "tz-there")
    assert set(here) == set(there)
    assert {name: rows for name, rows in there.items() if rows != here[name]} == {}
    # the planted edges landed where the rule puts them
    ids = {r[0] for r in here["bronze.chat_messages"]}
    assert {"m3", "m4"} <= ids and "m5" not in ids
    shutil.rmtree(root / "logs", ignore_errors=True)
