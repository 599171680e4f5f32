"""Scheduled housekeeping (APScheduler), started with the HTTP app."""
from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete

from gateway.pipeline import Gateway
from gateway.storage.tables import messages

log = logging.getLogger("directlink.jobs")


def purge_messages(gateway: Gateway) -> int:
    """Forget MessageIds older than the retention window; returns how many were removed.

    Safe because a request that old is refused as TIMESTAMP_OUT_OF_WINDOW before the replay guard is
    consulted: the window is kept at least 24 h and at least twice the freshness window."""
    settings = gateway.settings
    keep = max(dt.timedelta(hours=max(settings.replay_retention_hours, 24)),
               dt.timedelta(seconds=2 * settings.freshness_seconds))
    cutoff = gateway.clock() - keep
    with gateway.engine.begin() as conn:
        removed = conn.execute(delete(messages).where(messages.c.received_at < cutoff)).rowcount
    if removed:
        log.info("purged %d remembered MessageIds older than %s", removed, cutoff.isoformat())
    return removed


def start(gateway: Gateway) -> BackgroundScheduler:
    """Start the background jobs of one gateway process."""
    scheduler = BackgroundScheduler(timezone=gateway.settings.zone)
    scheduler.add_job(purge_messages, "interval", hours=1, args=[gateway], id="purge_messages",
                      coalesce=True, max_instances=1)
    scheduler.start()
    return scheduler
