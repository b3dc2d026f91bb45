"""Progress lines for long operations: stage, rows, seconds."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class _Stage:
    rows: int | None = None
    detail: str = ""


class Progress:
    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.finished: list[dict] = []  # name, rows, seconds, started_at (epoch) of every step done, in order

    def note(self, text: str) -> None:
        if not self.quiet:
            print(f"  .. {text}", file=self.stream, flush=True)

    @contextmanager
    def stage(self, name: str):
        stage = _Stage()
        started_at = time.time()
        start = time.monotonic()
        if not self.quiet:
            print(f"[{name}] ...", file=self.stream, flush=True)
        yield stage
        seconds = time.monotonic() - start
        self.finished.append({"step": name, "rows": stage.rows, "seconds": seconds, "started_at": started_at})
        if not self.quiet:
            rows = f"{stage.rows:>10,} rows" if stage.rows is not None else " " * 15
            print(f"[{name}] done {rows} {seconds:7.1f}s {stage.detail}", file=self.stream, flush=True)
