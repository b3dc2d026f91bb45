"""Alerts to the people on call, through Airflow's SMTP provider and the `audience_alerts`
connection (host, port, login; in its extra, `to` (comma-separated) and `from_email`). Without that
connection nothing is sent: failures and late dates are then only in the Airflow UI.

Imported by the DAG files (light: Airflow's own modules only, inside the functions) and by the
executor that runs a deadline's callback, which finds it by this module's path.
"""

from __future__ import annotations

import datetime as dt
import html
import logging

ALERT_CONN = "audience_alerts"


def _send(subject: str, lines: list[str], context) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk import Connection

    try:
        extra = Connection.get(ALERT_CONN).extra_dejson
    except Exception:  # not configured: nothing to send to
        return
    if not extra.get("to"):
        logging.getLogger(__name__).error("%s has no `to` in its extra: alert not sent: %s", ALERT_CONN, subject)
        return
    SmtpNotifier(
        to=extra["to"],
        from_email=extra.get("from_email"),
        subject=subject,
        html_content="<p>" + "<br>".join(html.escape(line) for line in lines) + "</p>",
        smtp_conn_id=ALERT_CONN,
    ).notify(context)  # notify, not __call__: the texts are not templates


def failure_alert(context) -> None:
    """A task's on_failure_callback: one e-mail per failed task with the date, the task, its try and
    the first line of the error."""
    ti, day = context["ti"], context["ds"]
    error = (str(context.get("exception") or "").strip().splitlines() or ["(no error recorded)"])[0][:500]
    _send(
        f"[audience] {ti.dag_id} {day}: {ti.task_id} failed",
        [
            f"Date: {day}",
            f"Task: {ti.task_id} (try {ti.try_number})",
            f"Error: {error}",
            f"Log: {getattr(ti, 'log_url', '')}",
        ],
        context,
    )


def publication_late(context: dict, **_) -> None:
    """The nightly DAG's deadline callback (run by the executor when a run has not published its date
    by `scheduling.publish_deadline_hours`): one e-mail naming the date and the run. A run queued
    after its deadline (a backfill or a re-run of a past date) is late by design: no alert."""
    run, deadline = context["dag_run"], context["deadline"]
    due = _utc(deadline["deadline_time"])
    queued = _utc(run.get("queued_at") or run.get("run_after"))
    if queued is not None and queued >= due:
        return
    day = _utc(run["logical_date"] or run["data_interval_start"]).date().isoformat()  # the run's `ds`
    _send(
        f"[audience] {run['dag_id']} {day}: not published by {due:%Y-%m-%d %H:%M} UTC",
        [
            f"Date: {day}",
            f"Task: publish not done by {due:%Y-%m-%d %H:%M} UTC (the run is {run.get('state')})",
            f"Run: {run['dag_run_id']}",
        ],
        context,
    )


def _utc(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
