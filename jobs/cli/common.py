"""What every command shares: conf and session from the options, text tables, dates."""

from __future__ import annotations

import datetime as dt

from jobs.errors import AudienceError


def render_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A plain aligned text table; numbers right-aligned with thousands separators."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])

    def fmt(v):
        if isinstance(v, bool) or v is None:
            return "" if v is None else str(v).lower()
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:,.3f}"
        return str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    numeric = [
        all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows if r.get(c) is not None)
        for c in columns
    ]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(
        v.rjust(w) if n else v.ljust(w)  # noqa: E731
        for v, w, n in zip(vals, widths, numeric)
    ).rstrip()
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def config_of(args):
    from jobs.config import load_config

    return load_config(args.conf, args.profile, args.landing, args.warehouse)


def session(cfg, app, engine=None):
    from jobs.session import build_spark

    return build_spark(cfg, app, engine)


def date_range(start: dt.date, end: dt.date):
    if end < start:
        raise AudienceError(f"--end {end} is before --start {start}")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
