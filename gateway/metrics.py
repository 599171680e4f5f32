"""Operational gauges read from the database when they are scraped (GET /metrics, `directlink metrics`):
what waits for people or jobs, and how long the certificates have. Every replica reports the same numbers,
since they share the database; alert on one replica's, or on the maximum.

- directlink_pending_approvals: payments waiting for an approver.
- directlink_clearing_backlog{state}: payments accepted but not yet sent to clearing (ACCEPTED), sent and not
  answered (PROCESSING), or with an outcome nobody knows yet (UNKNOWN).
- directlink_notify_events{state}: notifications pending (retrying among them) and dead letters.
- directlink_certificate_days_left{certificate}: the gateway's current (and next) certificate, and the
  operator certificate that expires first among those in force."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from cryptography import x509
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, case, func, select

from domain.codes import PaymentState as S
from gateway.notify.outbox import DEAD, PENDING
from gateway.storage.tables import certificates, outbox_events, payments

BACKLOG = (S.ACCEPTED, S.PROCESSING, S.UNKNOWN)


class Operations(Collector):
    def __init__(self, engine: Engine, gateway_certs: Callable[[], list[tuple[str, bytes]]],
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)):
        self.engine, self.gateway_certs, self.clock = engine, gateway_certs, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        states = [S.PENDING_APPROVAL.value, *(s.value for s in BACKLOG)]
        with self.engine.connect() as conn:
            counts = dict(conn.execute(select(payments.c.state, func.count()).where(payments.c.state.in_(states))
                                       .group_by(payments.c.state)).all())
            events = conn.execute(select(
                func.sum(case((outbox_events.c.state == PENDING, 1), else_=0)),
                func.sum(case(((outbox_events.c.state == PENDING) & (outbox_events.c.attempts > 0), 1), else_=0)),
                func.sum(case((outbox_events.c.state == DEAD, 1), else_=0)))
                .where(outbox_events.c.state.in_((PENDING, DEAD)))).one()
            soonest = conn.execute(select(func.min(certificates.c.not_after)).where(
                certificates.c.revoked_at.is_(None), certificates.c.not_after > now,
                certificates.c.not_before <= now)).scalar()
        approvals = GaugeMetricFamily("directlink_pending_approvals", "Payments waiting for an approver")
        approvals.add_metric([], counts.get(S.PENDING_APPROVAL.value, 0))
        yield approvals
        backlog = GaugeMetricFamily("directlink_clearing_backlog", "Payments not yet settled by clearing",
                                    labels=["state"])
        for state in BACKLOG:
            backlog.add_metric([state.value], counts.get(state.value, 0))
        yield backlog
        notify = GaugeMetricFamily("directlink_notify_events", "Notifications not delivered yet", labels=["state"])
        for label, value in zip(("pending", "retrying", "dead"), events, strict=True):
            notify.add_metric([label], int(value or 0))
        yield notify
        days = GaugeMetricFamily("directlink_certificate_days_left", "Days until a certificate expires",
                                 labels=["certificate"])
        for role, pem in self.gateway_certs():
            if role != "previous":
                left = x509.load_pem_x509_certificate(pem).not_valid_after_utc - now
                days.add_metric([f"gateway_{role}"], left.total_seconds() / 86400)
        if soonest is not None:
            days.add_metric(["operator_soonest"], (soonest - now).total_seconds() / 86400)
        yield days


def text(engine: Engine, gateway_certs: Callable[[], list[tuple[str, bytes]]]) -> bytes:
    """The gauges in the Prometheus text format, without a running gateway (`directlink metrics`)."""
    from prometheus_client import CollectorRegistry, generate_latest
    registry = CollectorRegistry()
    registry.register(Operations(engine, gateway_certs))
    return generate_latest(registry)
