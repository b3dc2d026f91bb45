import datetime as dt
import os
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# A real key for the whole suite, as Airflow tasks require; tests of the development-key fallback
# unset it themselves.
os.environ.setdefault("AUDIENCE_PSEUDONYM_KEY", "test-suite-pseudonym-key")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from jobs.config import load_config
    from jobs.session import build_spark

    cfg = load_config(profile="test", warehouse=tmp_path_factory.mktemp("session-warehouse"))
    session = build_spark(cfg, "audience-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def cfg():
    """The shipped conf on the test profile, shared and frozen: a test that needs another policy
    takes `cfg.with_policy(region, ...)`, a copy."""
    from jobs.config import load_config

    return load_config(profile="test")


@pytest.fixture(scope="session")
def gold_snapshot(spark):
    """A date's rows of a gold table without what differs between runs of the same data (run id,
    publication time and id): compare two with chispa's assert_df_equality."""
    from pyspark.sql import functions as F

    def read(warehouse, table, day):
        frame = spark.read.format("delta").load(table.path(warehouse)).where(F.col("snapshot_date") == F.lit(day))
        return frame.drop("run_id", "published_at", "publication_id")

    return read


@pytest.fixture
def make_cfg(tmp_path):
    """A test-profile Config whose landing and warehouse live under this test's tmp_path."""
    from jobs.config import load_config

    def _make(**overrides):
        return load_config(
            profile="test",
            landing=overrides.get("landing", tmp_path / "landing"),
            warehouse=overrides.get("warehouse", tmp_path / "warehouse"),
        )

    return _make


@pytest.fixture
def day():
    return dt.date(2025, 12, 16)


@pytest.fixture(scope="session")
def small_audience_conf(tmp_path_factory):
    """conf/ with a publication floor of 10 members instead of 100, so that the small generated
    days of the tests publish segments (every other rule as shipped)."""
    import shutil

    from jobs.config import DEFAULT_CONF_DIR

    conf = tmp_path_factory.mktemp("conf") / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, conf)
    regions = conf / "regions.yaml"
    text = regions.read_text()
    assert "min_audience_size: 100 " in text
    regions.write_text(text.replace("min_audience_size: 100 ", "min_audience_size: 10  "))
    return conf


@pytest.fixture(scope="session")
def two_nights(spark, tmp_path_factory, small_audience_conf):
    """Two generated days run with `run_date`; the warehouse as it stood after the first night is
    copied aside, so other tests can run the second night another way and compare."""
    import shutil

    from jobs.config import load_config
    from jobs.pipeline import run_date
    from jobs.progress import Progress
    from jobs.sample.generate import GenerateOptions, generate

    d1, d2 = dt.date(2025, 12, 16), dt.date(2025, 12, 17)
    root = tmp_path_factory.mktemp("two-nights")
    cfg = load_config(small_audience_conf, profile="test", landing=root / "landing", warehouse=root / "warehouse")
    generate(
        cfg.landing,
        GenerateOptions(start=d1, days=2, messages_per_day=3000, seed=5),
        [x.topic_id for x in cfg.targetable_topics],
    )
    run_date(spark, cfg, d1, Progress(quiet=True))
    shutil.copytree(cfg.warehouse, root / "warehouse-after-d1")
    first = run_date(spark, cfg, d2, Progress(quiet=True))
    return {"cfg": cfg, "root": root, "d1": d1, "d2": d2, "first": first, "after_d1": root / "warehouse-after-d1"}


# Commands run by `jobs.cli.main` one after the other in one process, so that they share one JVM
# (each would start a cold one); ["copy", from, to] copies a folder aside between them.
_ONE_PROCESS = """
import contextlib, io, json, logging, shutil, sys
from jobs.cli import main
done = []
for step in json.loads(sys.argv[1]):
    if step[0] == "copy":
        shutil.copytree(step[1], step[2])
        continue
    out, err = io.StringIO(), io.StringIO()
    logging.root.handlers.clear()  # main's logging.basicConfig then writes to this command's stderr
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(step)
        except SystemExit as stop:  # argparse's own errors and --help
            code = stop.code
    done.append({"args": step, "returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(done))
"""


@pytest.fixture(scope="session")
def cli_in_one_process():
    """Run `audience` command lines in one process: returns each command's {args, returncode,
    stdout, stderr}, in order; the process's own output is appended to `<cwd>/outputs.log`."""
    import json
    import subprocess
    import sys

    def run(steps, env, cwd):
        proc = subprocess.run(
            [sys.executable, "-c", _ONE_PROCESS, json.dumps([[str(a) for a in step] for step in steps])],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=1800,
            cwd=cwd,
        )
        with (Path(cwd) / "outputs.log").open("a") as log:
            log.write(f"{proc.stdout}\n{proc.stderr}\n")
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.splitlines()[-1])

    return run
