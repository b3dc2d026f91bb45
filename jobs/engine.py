"""A warm Spark engine shared by the stages of a run: one driver JVM with Spark Connect's plug-in,
which each stage process joins as a Spark Connect client (`audience stage ... --engine sc://...`).

Each stage run in a new JVM pays its start, class loading and JIT warm-up again: measured at
`make demo`'s size, a stage costs 3 to 7 times more in a fresh JVM than in a warm one. The engine
is this package's own session (jobs/session.py: the same jars, extensions and settings) with
`org.apache.spark.sql.connect.SparkConnectPlugin`, so the stages need no other server build.

`start` launches `serve` in the background, waits until its port answers and prints the URL on the
last line (what an Airflow setup task pushes to XCom); `stop` ends it by the URL. The engine binds
127.0.0.1 and admits only clients holding its token (Spark Connect's pre-shared key): a random one
per engine, kept with its pid in a folder of this machine's temporary directory that only its OS
user can read, never in the URL, a command line or a log. An engine serves the machine it runs on.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from jobs.errors import AudienceError

log = logging.getLogger(__name__)
PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"
HOST = "127.0.0.1"
# Spark Connect's client sends a token without TLS only to "localhost" (gRPC local credentials).
URL_HOST = "localhost"
TOKEN_ENV = "SPARK_CONNECT_AUTHENTICATE_TOKEN"  # read by the engine's JVM at start
STATE_DIR = Path(tempfile.gettempdir()) / f"audience-engine-{os.getuid()}"


def _url(port: int) -> str:
    return f"sc://{URL_HOST}:{port}"


def _port_of(url: str) -> int:
    host, _, port = url.removeprefix("sc://").partition("/")[0].partition(":")
    if host != URL_HOST or not port.isdigit():
        raise AudienceError(f"not an engine URL of this machine: {url!r} (expected sc://{URL_HOST}:PORT)")
    return int(port)


def _pid_file(port: int) -> Path:
    return STATE_DIR / f"{port}.pid"


def _token_file(port: int) -> Path:
    return STATE_DIR / f"{port}.token"


def _forget(port: int) -> None:
    _pid_file(port).unlink(missing_ok=True)
    _token_file(port).unlink(missing_ok=True)


def client_url(url: str) -> str:
    """The URL a stage connects with: the engine's, plus its token from this machine's state folder."""
    token_file = _token_file(_port_of(url))
    if not token_file.exists():
        raise AudienceError(f"no engine of this machine's user serves {url} (start one with `audience engine start`)")
    return f"{url}/;token={token_file.read_text().strip()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def serve(cfg, port: int, master: str | None, max_hours: float) -> None:
    """Run the engine in this process until SIGTERM/SIGINT, or `max_hours` (so that an engine whose
    teardown never ran does not hold its memory for ever)."""
    from jobs.session import build_spark

    extra = {
        "spark.plugins": PLUGIN,
        "spark.connect.grpc.binding.address": HOST,
        "spark.connect.grpc.binding.port": str(port),
    }
    spark = build_spark(cfg, f"audience-engine-{port}", master=master, extra=extra)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(f"engine serving {_url(port)} (master {spark.conf.get('spark.master')})", flush=True)
    done.wait(max_hours * 3600)
    spark.stop()


def start(args, port: int | None, master: str | None, timeout_s: float = 180) -> str:
    """Launch `serve` in the background (its own session, so a task's end does not kill it); return
    its URL once the port answers."""
    port = port or _free_port()
    if _answers(port):
        raise AudienceError(f"port {port} is in use: stop what listens there or pick another --port")
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    STATE_DIR.chmod(0o700)
    token = secrets.token_urlsafe(32)
    _token_file(port).touch(mode=0o600)
    _token_file(port).write_text(token)
    log_file = STATE_DIR / f"{port}.log"
    command = [sys.executable, "-m", "jobs.cli", *args, "engine", "serve", "--port", str(port)]
    if master:
        command += ["--master", master]
    with open(log_file, "w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, TOKEN_ENV: token}
        )
    _pid_file(port).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while not _answers(port):
        exited = proc.poll() is not None
        if exited or time.monotonic() > deadline:
            if not exited:
                os.killpg(proc.pid, signal.SIGKILL)
            _forget(port)
            why = f"exited with code {proc.returncode}" if exited else f"did not answer within {timeout_s:.0f} s"
            raise AudienceError(f"the engine {why}: {_first_error(log_file)} (log {log_file})")
        time.sleep(0.5)
    return _url(port)


def _first_error(log_file: Path) -> str:
    """The log's first line that names an exception or error (Java's or ours), else its last line."""
    lines = [line.strip() for line in log_file.read_text().splitlines() if line.strip()]
    found = [line for line in lines if ("Exception" in line or "error" in line.lower()) and not line.startswith("at ")]
    return (found or lines or ["(empty log)"])[0][:400]


def _is_engine(pid: int, port: int) -> bool:
    """Whether `pid` is still the engine serving `port` (not a process that reused a stale pid)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.parent.exists():  # no /proc: trust the pid file
        return True
    try:
        words = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in words and str(port).encode() in words


def stop(url: str, timeout_s: float = 60) -> bool:
    """End the engine at `url`; False when none of this machine's engines serves it."""
    port = _port_of(url)
    pid_file = _pid_file(port)
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    if not _is_engine(pid, port):
        _forget(port)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises once it has exited
            time.sleep(0.5)
        log.warning("engine %s did not stop within %.0f s: killed", url, timeout_s)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _forget(port)
    return True
