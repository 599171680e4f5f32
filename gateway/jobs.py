"""Scheduled housekeeping (APScheduler), started with the HTTP app."""
from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete, select

from gateway import audit
from gateway.clearing import Clearing
from gateway.pipeline import Gateway
from gateway.storage.tables import certificates, messages

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


def purge_audit(gateway: Gateway) -> int:
    """Drop audit records past the retention period (default five years) from the start of each chain."""
    cutoff = gateway.clock() - dt.timedelta(days=max(gateway.settings.audit_retention_days, 1))
    with gateway.engine.begin() as conn:
        return audit.purge(conn, cutoff)


def warn_expiring(gateway: Gateway) -> list[str]:
    """Warn (log and audit) about operator certificates and the gateway's own that expire soon."""
    now = gateway.clock()
    horizon = now + dt.timedelta(days=gateway.settings.cert_warning_days)
    found = []
    with gateway.engine.begin() as conn:
        soon = conn.execute(select(certificates).where(certificates.c.revoked_at.is_(None),
                                                       certificates.c.not_after > now,
                                                       certificates.c.not_after <= horizon)).all()
        for c in soon:
            found.append(f"{c.client_id}/{c.operator_id} certificate {c.fingerprint[:16]} expires {c.not_after:%Y-%m-%d}")
        own = gateway.signer.certificate.not_valid_after_utc
        if own <= horizon:
            found.append(f"the gateway's own certificate expires {own:%Y-%m-%d}: run `directlink keys rotate`")
        for line in found:
            log.warning("%s", line)
            audit.append(conn, chain=audit.SYSTEM, at=now, kind="config", code="CERT_EXPIRING", detail=line)
    return found


def start(gateway: Gateway) -> BackgroundScheduler:
    """Start the background jobs of one gateway process."""
    scheduler = BackgroundScheduler(timezone=gateway.settings.zone)
    settings = gateway.settings
    clearing = Clearing(gateway.engine, settings, gateway.clock)
    scheduler.add_job(clearing.run_once, "interval", seconds=settings.clearing_interval_seconds, id="clearing",
                      coalesce=True, max_instances=1)
    scheduler.add_job(purge_messages, "interval", hours=1, args=[gateway], id="purge_messages",
                      coalesce=True, max_instances=1)
    scheduler.add_job(purge_audit, "interval", days=1, args=[gateway], id="purge_audit",
                      coalesce=True, max_instances=1)
    scheduler.add_job(warn_expiring, "interval", days=1, args=[gateway], id="warn_expiring",
                      coalesce=True, max_instances=1, next_run_time=dt.datetime.now(dt.timezone.utc))
    scheduler.start()
    return scheduler
