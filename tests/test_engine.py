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
    done = audience("engine", "stop", "--url", f"sc://127.0.0.1:{port}", tmp_path=tmp_path)
    assert done.returncode == 0 and "was not running" in done.stdout


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
