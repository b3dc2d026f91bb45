"""The privacy stage of one logical date: the night's erasure requests applied everywhere, then user
state as of the date from what remains (built after the erasures, so an erased account never
reaches tonight's state), then tonight's objections to chat-derived ads withdraw stored signals."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs import tables as t
from jobs.context import RunContext
from jobs.privacy.requests import apply_erasures, withdraw_chat_signals
from jobs.silver.stage import rebuild_chat_daily
from jobs.silver.user_state import build_user_state, region_frame


def run(ctx: RunContext) -> dict:
    spark, cfg, d = ctx.spark, ctx.cfg, ctx.logical_date
    applied, chat_dates = apply_erasures(spark, cfg, d, ctx.run_id)
    for signal_date in sorted(chat_dates):  # the chat part of those dates' daily aggregates
        rebuild_chat_daily(ctx, signal_date)
    state = build_user_state(
        ctx.read(t.USER_PROFILES),
        ctx.read(t.AD_PREFERENCES),
        region_frame(spark, cfg.country_region),
        cfg.default_region,
        d,
    )
    ctx.replace(state, t.USER_STATE, {"state_date": d})
    withdrawn = withdraw_chat_signals(spark, cfg, d)
    return {
        "users": ctx.read(t.USER_STATE).where(F.col("state_date") == F.lit(d)).count(),
        "erasures": len(applied),
        "rows_removed": sum(a["rows_removed"] for a in applied),
        "chat_opt_outs": withdrawn,
    }
