"""Scheduled housekeeping (APScheduler), started with the HTTP app."""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from gateway import audit, flows, maker_totals
from gateway.clearing import Clearing
from gateway.notify.delivery import Delivery
from gateway.pipeline import Gateway
from gateway.storage.tables import certificates, job_runs, messages
from gateway.storage.unit_of_work import transaction

log = logging.getLogger("directlink.jobs")
RUNNER = f"{socket.gethostname()}:{os.getpid()}"


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
        # Claimed job runs are only needed while replicas might still compete for them.
        conn.execute(delete(job_runs).where(job_runs.c.due < gateway.clock() - dt.timedelta(days=2)))
    if removed:
        log.info("purged %d remembered MessageIds older than %s", removed, cutoff.isoformat())
    return removed


def purge_audit(gateway: Gateway) -> int:
    """Drop audit records past the retention period (default five years) from the start of each chain."""
    cutoff = gateway.clock() - dt.timedelta(days=max(gateway.settings.audit_retention_days, 1))
    with gateway.engine.begin() as conn:
        return audit.purge(conn, cutoff)


def purge_flows(gateway: Gateway) -> int:
    """Drop the running totals that nothing reads any more: the fund-flow rules' beyond every window
    (gateway/flows.py), the makers' daily ones before yesterday (gateway/maker_totals.py)."""
    with gateway.engine.begin() as conn:
        return flows.prune(conn, gateway.clock()) + maker_totals.prune(conn, gateway.clock())


def warn_expiring(gateway: Gateway) -> list[str]:
    """Warn (log and audit) about operator certificates and the gateway's own that expire soon."""
    now = gateway.clock()
    horizon = now + dt.timedelta(days=gateway.settings.cert_warning_days)
    found = []
    with transaction(gateway.engine) as uow:
        soon = uow.conn.execute(select(certificates).where(certificates.c.revoked_at.is_(None),
                                                       certificates.c.not_after > now,
                                                       certificates.c.not_after <= horizon)).all()
        for c in soon:
            found.append(f"{c.client_id}/{c.operator_id} certificate {c.fingerprint[:16]} expires {c.not_after:%Y-%m-%d}")
        own = gateway.signer.certificate.not_valid_after_utc
        if own <= horizon:
            found.append(f"the gateway's own certificate expires {own:%Y-%m-%d}: run `directlink keys rotate`")
        for line in found:
            log.warning("%s", line)
            audit.append(uow, chain=audit.SYSTEM, at=now, kind="config", code="CERT_EXPIRING", detail=line)
    return found


def claim(gateway: Gateway, job: str, interval: dt.timedelta) -> bool:
    """Claim this run of `job` for its current due time; False if another replica already has it.

    The due time is the start of the current interval, so replicas whose timers fire a little apart
    still compete for the same row, and the primary key lets exactly one of them win."""
    now = gateway.clock()
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    due = epoch + ((now - epoch) // interval) * interval
    try:
        with gateway.engine.begin() as conn:
            conn.execute(insert(job_runs).values(job=job, due=due, runner=RUNNER[:80], started_at=now))
        return True
    except IntegrityError:
        return False


def once_per_due_time(gateway: Gateway, job: str, interval: dt.timedelta, work: Callable[[], object]):
    """A scheduler callback that runs `work` only in the replica that claimed the due time."""
    def run() -> None:
        if claim(gateway, job, interval):
            work()
    return run


def start(gateway: Gateway) -> BackgroundScheduler:
    """Start the background jobs of one gateway process; each due run happens in one replica only."""
    scheduler = BackgroundScheduler(timezone=gateway.settings.zone)
    settings = gateway.settings
    clearing = Clearing(gateway.engine, settings, gateway.clock)
    schedule = [
        ("clearing", dt.timedelta(seconds=settings.clearing_interval_seconds), clearing.run_once),
        # Claims its rows with SKIP LOCKED too, so a run that overlaps the next due time is safe.
        ("notify", dt.timedelta(seconds=settings.notify_interval_seconds),
         Delivery(gateway.engine, settings, gateway.signer, gateway.clock).run_once),
        ("purge_messages", dt.timedelta(hours=1), lambda: purge_messages(gateway)),
        ("purge_audit", dt.timedelta(days=1), lambda: purge_audit(gateway)),
        ("purge_flows", dt.timedelta(days=1), lambda: purge_flows(gateway)),
        ("warn_expiring", dt.timedelta(days=1), lambda: warn_expiring(gateway)),
    ]
    for name, every, work in schedule:
        first = dt.datetime.now(dt.UTC) if name == "warn_expiring" else None
        scheduler.add_job(once_per_due_time(gateway, name, every, work), "interval",
                          seconds=every.total_seconds(), id=name, coalesce=True, max_instances=1,
                          **({"next_run_time": first} if first else {}))
    scheduler.start()
    return scheduler
