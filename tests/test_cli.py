"""The command line gives one clear line and a non-zero exit for operator mistakes, never a traceback."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from jobs.config import load_config

AUDIENCE = str(Path(sys.executable).with_name("audience"))


def _run(*args, env=None, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([AUDIENCE, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300)


def _assert_one_clear_line(result, *needles):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("audience: error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0]


def test_bad_date_is_rejected(tmp_path):
    result = _run("run", "--date", "2025-13-45", cwd=tmp_path)
    assert result.returncode == 2 and "bad date '2025-13-45'" in result.stderr
    assert "Traceback" not in result.stderr


def test_common_options_are_accepted_before_or_after_the_subcommand(tmp_path):
    from jobs.cli import build_parser

    before = build_parser().parse_args(["--landing", "L", "--profile", "test", "run", "--date", "2025-12-16"])
    after = build_parser().parse_args(["run", "--date", "2025-12-16", "--landing", "L", "--profile", "test"])
    assert (before.landing, before.profile) == (after.landing, after.profile) == ("L", "test")
    assert before.warehouse is after.warehouse is None and not after.quiet


def test_missing_jars_say_how_to_fetch_them(tmp_path):
    # the options after the subcommand, as people type them
    result = _run(
        "run",
        "--date",
        "2025-12-16",
        "--landing",
        str(tmp_path),
        env={"AUDIENCE_JARS_DIR": str(tmp_path / "nojars")},
        cwd=tmp_path,
    )
    _assert_one_clear_line(result, "Delta jars missing", "make jars")


def test_missing_java_is_reported(tmp_path):
    result = _run(
        "run", "--date", "2025-12-16", env={"PATH": str(Path(sys.executable).parent), "JAVA_HOME": ""}, cwd=tmp_path
    )
    _assert_one_clear_line(result, "Java 17 is required")


def test_bad_conf_names_file_and_key(tmp_path):
    import shutil

    from jobs.config import DEFAULT_CONF_DIR

    conf = tmp_path / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, conf)
    (conf / "regions.yaml").write_text((conf / "regions.yaml").read_text().replace("  top_k: 5", "  top_k: five"))
    result = _run("--conf", str(conf), "run", "--date", "2025-12-16", cwd=tmp_path)
    _assert_one_clear_line(result, "regions.yaml: policy_defaults.top_k")


@pytest.mark.slow
def test_missing_landing_folder_stops_the_run_clearly(tmp_path):
    result = _run(
        "--landing",
        str(tmp_path / "landing"),
        "--warehouse",
        str(tmp_path / "wh"),
        "run",
        "--date",
        "2025-12-16",
        cwd=tmp_path,
    )
    _assert_one_clear_line(result, "landing folder missing", "chat_messages", "2025-12-16")


@pytest.mark.slow
def test_generate_run_and_sql_from_the_command_line(tmp_path, cli_in_one_process):
    roots = ["--landing", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "wh")]
    gen = _run(*roots, "generate", "--date", "2025-12-16", "--messages", "500", cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr
    run = _run(*roots, "run", "--date", "2025-12-16", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "landing rows = accepted + quarantined" in run.stdout and "[ingest chat_messages] done" in run.stderr
    assert "region" in run.stdout and "published" in run.stdout
    # The reading commands, in one process (each would start a JVM of its own).
    refused = (
        "DELETE FROM gold.segment_catalog WHERE true",
        "UPDATE bronze.chat_messages SET text = 'x'",
        "RESTORE TABLE gold.segment_catalog TO VERSION AS OF 0",
        "WITH x AS (SELECT 1 AS a) INSERT INTO gold.segment_catalog SELECT * FROM x",
        # beyond the tables: the landing zone's raw rows by path, a static Java call, a shell command
        f"SELECT * FROM json.`{tmp_path / 'landing' / 'chat_messages'}`",
        "WITH x AS (SELECT reflect('java.lang.System', 'getProperty', 'user.home') AS h) SELECT * FROM x",
        "SELECT TRANSFORM(region) USING 'cat /etc/hostname' FROM gold.segment_catalog",
    )
    by_region = "SELECT region, count(*) AS n, max(snapshot_date) AS day FROM gold.segment_catalog GROUP BY region"
    catalog = "SELECT region, segment_id FROM gold.segment_catalog ORDER BY region, segment_id"
    as_csv, as_json, export, screen, sql, report, bad, *writes, rows = (
        SimpleNamespace(**done)
        for done in cli_in_one_process(
            [
                [*roots, "sql", "--format", "csv", by_region + " ORDER BY region"],
                [*roots, "sql", "--format", "json", by_region + " ORDER BY region"],
                [*roots, "sql", "--format", "csv", catalog],
                [*roots, "sql", catalog],
                [*roots, "sql", "SELECT count(DISTINCT message_id) AS n FROM bronze.chat_messages"],
                [*roots, "report", "--date", "2025-12-16"],
                [*roots, "sql", "SELECT nope FROM bronze.chat_messages"],
                *[[*roots, "sql", statement] for statement in refused],
                [*roots, "sql", "SELECT count(*) AS n FROM gold.segment_catalog"],
            ],
            {},
            tmp_path,
        )
    )
    # --format csv and json: the same rows, for spreadsheets and scripts (one catalog row per topic)
    topics = len(load_config().targetable_topics)
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    json_rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert csv_rows and [{**r, "n": int(r["n"])} for r in csv_rows] == json_rows
    assert all(r["n"] == topics and r["day"] == "2025-12-16" for r in json_rows)
    assert sql.returncode == 0, sql.stderr
    accepted = next(line.split()[2] for line in run.stdout.splitlines() if line.startswith("chat_messages"))
    assert report.returncode == 0 and report.stdout.strip() == run.stdout.strip()
    assert sql.stdout.split()[-1] == accepted
    _assert_one_clear_line(bad, "query failed")
    for write in writes:
        _assert_one_clear_line(write, "read-only")
    assert rows.returncode == 0 and int(rows.stdout.split()[-1]) > 0, "nothing was deleted"
    # an export has every row, in order; a table a screenful, and says so
    catalog_rows = int(rows.stdout.split()[-1])
    exported = list(csv.DictReader(io.StringIO(export.stdout)))
    assert catalog_rows > 50 and len(exported) == catalog_rows
    assert exported == sorted(exported, key=lambda r: (r["region"], r["segment_id"]))
    assert screen.stdout.count("\n") < 60 and "first 50 rows" in screen.stderr
