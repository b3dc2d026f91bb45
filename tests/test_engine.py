"""`audience engine`: what an operator sees when starting or stopping the warm engine goes wrong.
Its normal life (started, shared by every stage, stopped by the teardown) is tests/test_airflow_e2e.py."""

import os
import socket
import subprocess
import sys

import pytest

from jobs import REPO_ROOT


def audience(*args, tmp_path):
    env = {**os.environ, "AUDIENCE_LOG_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", "-q", "--warehouse", str(tmp_path / "wh"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )


def test_stop_refuses_an_engine_of_another_machine(tmp_path):
    done = audience("engine", "stop", "--url", "sc://10.1.2.3:15002", tmp_path=tmp_path)
    assert done.returncode == 2 and "not an engine URL of this machine" in done.stderr


def test_stop_of_an_engine_that_is_not_running_says_so(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = audience("engine", "stop", "--url", f"sc://localhost:{port}", tmp_path=tmp_path)
    assert done.returncode == 0 and "was not running" in done.stdout


def test_stop_never_signals_a_process_that_reused_a_stale_pid(tmp_path):
    from jobs.engine import STATE_DIR

    bystander = subprocess.Popen(["sleep", "60"])
    port = 1  # no engine ever serves it
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    (STATE_DIR / f"{port}.pid").write_text(str(bystander.pid))
    try:
        done = audience("engine", "stop", "--url", f"sc://localhost:{port}", tmp_path=tmp_path)
        assert done.returncode == 0 and "was not running" in done.stdout
        assert bystander.poll() is None, "a process that is not the engine was signalled"
        assert not (STATE_DIR / f"{port}.pid").exists()
    finally:
        bystander.kill()


def test_start_on_a_busy_port_is_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        done = audience("engine", "start", "--port", str(port), tmp_path=tmp_path)
    assert done.returncode == 2 and f"port {port} is in use" in done.stderr


@pytest.mark.slow
def test_an_engine_that_cannot_start_fails_with_its_log_not_a_hang(tmp_path):
    done = audience("engine", "start", "--master", "nonsense://nowhere", tmp_path=tmp_path)
    assert done.returncode == 2, done.stderr
    # the cause, from the engine's own log, in the one line the operator reads
    assert "the engine exited" in done.stderr and "Master must" in done.stderr
    assert "Traceback" not in done.stderr


# A client in a process of its own: a Spark Connect session marks its process (and children) as
# Connect-only, which the suite's classic sessions must not inherit.
CLIENT = """
import os, sys
from pyspark.sql import SparkSession
try:
    print(f"admitted {SparkSession.builder.remote(sys.argv[1]).create().range(3).count()}")
except Exception as exc:
    print(f"refused: {exc}")
sys.stdout.flush()
os._exit(0)  # not the client's exit-time retries of a session the engine never admitted
"""


def connect_as(url: str) -> str:
    return subprocess.run([sys.executable, "-c", CLIENT, url], capture_output=True, text=True, timeout=120).stdout


@pytest.mark.slow
def test_only_holders_of_the_engines_token_can_use_it(tmp_path):
    """The engine holds every table's data: a local process without its token is refused."""
    from jobs.engine import client_url

    started = audience("--profile", "test", "engine", "start", tmp_path=tmp_path)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    try:
        assert "token" not in url
        assert connect_as(client_url(url)).startswith("admitted 3")
        for stranger in (url, f"{url}/;token=guessed"):
            tried = connect_as(stranger)
            assert tried.startswith("refused:") and "UNAUTHENTICATED" in tried.upper(), tried
    finally:
        assert audience("engine", "stop", "--url", url, tmp_path=tmp_path).returncode == 0
