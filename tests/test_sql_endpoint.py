"""`audience serve-sql`: a BI tool's JDBC client (Hive's beeline, from the pyspark wheel) queries
the tables by name, gets what `audience sql` and Polars get, and cannot change anything."""

import csv
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyspark
import pytest

from jobs.cli import main
from jobs.engine import _free_port

AUDIENCE_BY_REGION = """
SELECT s.region, count(*) AS members
FROM gold.audience_segments s
JOIN gold.segment_catalog c USING (snapshot_date, region, segment_id, publication_id)
WHERE c.snapshot_date = (SELECT max(snapshot_date) FROM gold.segment_catalog)
GROUP BY s.region ORDER BY s.region
"""


@pytest.fixture(scope="module")
def warehouse(two_nights, tmp_path_factory):
    """A private copy of the warehouse after the first night (other modules write later versions of
    the shared one, and this module compares versions)."""
    import shutil

    copy = tmp_path_factory.mktemp("endpoint") / "warehouse"
    shutil.copytree(two_nights["after_d1"], copy)
    return copy


@pytest.fixture(scope="module")
def endpoint(two_nights, warehouse, tmp_path_factory):
    cfg = two_nights["cfg"]
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "serve-sql", "--conf", str(cfg.conf_dir), "--profile", "test"]
        + ["--warehouse", str(warehouse), "--port", str(port), "--max-hours", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "AUDIENCE_LOG_DIR": str(tmp_path_factory.mktemp("logs"))},
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in server.stdout], daemon=True).start()
    seen, deadline = [], time.monotonic() + 300
    try:
        while not (seen and seen[-1].startswith("serving ")):
            try:
                seen.append(lines.get(timeout=5))
            except queue.Empty:
                assert server.poll() is None, "serve-sql exited:\n" + "".join(seen)
                assert time.monotonic() < deadline, "serve-sql did not start:\n" + "".join(seen)
        yield f"jdbc:hive2://127.0.0.1:{port}/default"
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=120) == 0


def _beeline(url: str, *args: str) -> subprocess.CompletedProcess:
    """Hive's beeline (`-e SQL`, or `-f FILE` of statements) against the endpoint, output as CSV."""
    beeline = Path(pyspark.__file__).parent / "bin" / "beeline"
    return subprocess.run(
        [str(beeline), "-u", url, "--silent=true", "--outputformat=csv2", *args],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def _csv(text: str) -> list[dict]:
    """beeline's csv2 output (after the prompt it echoes when its input is not a terminal)."""
    return list(csv.DictReader(io.StringIO(re.sub(r"^\d+: jdbc:hive2://\S+> ", "", text.strip()))))


def test_a_jdbc_client_reads_the_audience_by_name_as_audience_sql_and_polars_do(
    two_nights, warehouse, endpoint, capsys
):
    import polars as pl
    from deltalake import DeltaTable

    cfg = two_nights["cfg"]
    over_jdbc = _beeline(endpoint, "-e", AUDIENCE_BY_REGION)
    assert over_jdbc.returncode == 0, over_jdbc.stderr[-2000:]
    jdbc = {r["region"]: int(r["members"]) for r in _csv(over_jdbc.stdout)}
    assert sum(jdbc.values()) > 0

    common = ["--conf", str(cfg.conf_dir), "--profile", "test", "--warehouse", str(warehouse), "-q"]
    capsys.readouterr()
    assert main(["sql", *common, "--format", "json", AUDIENCE_BY_REGION]) == 0
    cli = {r["region"]: r["members"] for r in map(json.loads, capsys.readouterr().out.splitlines())}

    def table(name):
        return pl.scan_pyarrow_dataset(DeltaTable(f"{warehouse}/{name.replace('.', '/')}").to_pyarrow_dataset())

    catalog = table("gold.segment_catalog")
    keys = ["snapshot_date", "region", "segment_id", "publication_id"]
    latest = catalog.filter(pl.col("snapshot_date") == pl.col("snapshot_date").max()).select(keys)
    polars = table("gold.audience_segments").join(latest, on=keys).group_by("region").len().collect()
    assert jdbc == cli == dict(polars.iter_rows())


def test_the_endpoint_time_travels_but_refuses_every_change(spark, warehouse, endpoint, tmp_path):
    from jobs import tables as t
    from jobs.io import delta_version

    first = _beeline(endpoint, "-e", "SELECT count(*) AS n FROM gold.segment_catalog VERSION AS OF 0")
    assert first.returncode == 0, first.stderr[-2000:]
    stored = spark.read.format("delta").option("versionAsOf", 0).load(t.SEGMENT_CATALOG.path(warehouse))
    assert int(_csv(first.stdout)[0]["n"]) == stored.count() > 0

    changes = (
        "DELETE FROM gold.audience_segments",
        "UPDATE bronze.chat_messages SET text = 'x'",
        "INSERT INTO gold.segment_catalog SELECT * FROM gold.segment_catalog",
        "WITH x AS (SELECT * FROM gold.segment_catalog) INSERT INTO gold.segment_catalog SELECT * FROM x",
        "DROP TABLE gold.audience_segments",
        "CREATE TABLE gold.copy AS SELECT * FROM gold.audience_segments",
        "VACUUM gold.audience_segments",
        # (a table with several versions after one night: RESTORE to the current version is a no-op)
        "RESTORE TABLE quality.validation_results TO VERSION AS OF 0",
    )
    versions = {x.qualified: delta_version(x.path(warehouse)) for x in t.ALL_TABLES}
    script = tmp_path / "changes.sql"
    script.write_text(";\n".join(changes) + ";\n")
    refused = _beeline(endpoint, "--force=true", "-f", str(script))  # every statement, past errors
    errors = [line for line in (refused.stdout + refused.stderr).splitlines() if "Error:" in line]
    assert len(errors) == len(changes) and all("read-only SQL endpoint" in e for e in errors), errors
    assert {x.qualified: delta_version(x.path(warehouse)) for x in t.ALL_TABLES} == versions


def test_the_endpoint_keeps_sessions_inside_the_tables(two_nights, endpoint, tmp_path):
    """A JDBC user reads tables, not the landing zone's raw files, the server's shell or its JVM."""
    chats = next((two_nights["cfg"].landing / "chat_messages").glob("date=*/part-00000.jsonl"))
    escapes = (
        f"SELECT * FROM json.`{chats}`",  # raw identifiers and unredacted text
        "SET spark.sql.runSQLOnFiles=true",  # then the same by path
        f"SELECT * FROM json.`{chats}`",
        "SELECT TRANSFORM(region) USING 'cat /etc/hostname' FROM gold.segment_catalog",
        "SELECT reflect('java.lang.System', 'getProperty', 'user.home')",
        "SELECT java_method('audience.ReadOnlySql', 'enable', false)",  # the guard's own switch
        "SELECT count(*) FROM gold.segment_catalog WHERE region = (SELECT reflect('java.util.UUID', 'randomUUID'))",
    )
    script = tmp_path / "escapes.sql"
    script.write_text(";\n".join(escapes) + ";\n")
    refused = _beeline(endpoint, "--force=true", "-f", str(script))
    errors = [line for line in (refused.stdout + refused.stderr).splitlines() if "Error:" in line]
    assert len(errors) == len(escapes), refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "user_id" not in refused.stdout and str(Path.home()) not in refused.stdout, refused.stdout
    # still a working endpoint: reading a setting, and the one a session may change
    ok = _beeline(endpoint, "-e", "SET spark.sql.session.timeZone=UTC; SET spark.sql.runSQLOnFiles")
    assert ok.returncode == 0 and "false" in ok.stdout, ok.stdout + ok.stderr[-2000:]
