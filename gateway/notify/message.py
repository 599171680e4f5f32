"""The Notification document (schemas/notification.xsd): rendered once, when the event is written, and
stored unsigned; delivery signs those same bytes with the gateway's current key.

Times are written in UTC: events are written deep inside a transaction (transitions.move, a posting's
outbox.posted) where the bank's zone is not at hand, and an offset makes them just as unambiguous.
"""
from __future__ import annotations

import datetime as dt
import unicodedata

from lxml import etree

from domain.money import Money
from gateway.payment_record import PaymentRecord
from gateway.protocol.messages import E, stamp

ROOT = "Notification"


def _clean(value: str | None, limit: int) -> str:
    """Text as the schema allows it. Stored values were checked on the way in; this only makes sure that a
    stray control character can never make rendering fail, which would roll back the payment itself."""
    kept = "".join(ch for ch in (value or "") if unicodedata.category(ch) not in ("Cc", "Cf"))
    return kept.strip()[:limit]


def _utc(moment: dt.datetime) -> str:
    return stamp(moment, dt.UTC)


def _document(event_id: str, created: dt.datetime, client: str, body: etree._Element) -> bytes:
    root = E(ROOT, E.Header(E.EventId(event_id), E.Created(_utc(created)), E.Client(client)), body,
             version="1")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def payment_event(*, event_id: str, created: dt.datetime, payment: PaymentRecord, sequence: int,
                  before: str | None, after: str, reason: str | None, why: str) -> bytes:
    """A payment changed state; `payment` as it stands after the change."""
    el = E.PaymentStatusChange(E.ClientRef(payment.client_ref), E.PaymentId(payment.id))
    if payment.end_to_end_id and payment.end_to_end_id != payment.client_ref:
        el.append(E.EndToEndId(payment.end_to_end_id))
    el.extend([E.DebtorAccount(payment.debtor_account),
               E.Amount(Money.from_minor(payment.amount, payment.currency).text(), currency=payment.currency),
               E.Sequence(str(sequence))])
    if before:
        el.append(E.PreviousState(before))
    el.append(E.State(after))
    if reason:
        el.append(E.Reason(_clean(why, 255), code=reason))
    el.append(E.Updated(_utc(created)))
    return _document(event_id, created, payment.client_id, el)


def credit_event(*, event_id: str, created: dt.datetime, client: str, entry, currency: str) -> bytes:
    """Money came into a client's account; `entry` is its entries row (the statement entry)."""
    el = E.IncomingCredit(E.Account(entry.account), E.EntryId(f"{entry.seq:012d}"),
                          E.Booked(_utc(entry.booked_at)), E.ValueDate(entry.value_date.isoformat()),
                          E.Amount(Money.from_minor(entry.amount, currency).text(), currency=currency))
    payer = E.Payer()
    if _clean(entry.counterparty_name, 70):
        payer.append(E.Name(_clean(entry.counterparty_name, 70)))
    if entry.counterparty_account:
        payer.append(E.Account(entry.counterparty_account))
    if entry.counterparty_scheme:
        payer.append(E.BankCode(entry.counterparty_code or "", scheme=entry.counterparty_scheme))
    if len(payer):
        el.append(payer)
    if entry.end_to_end_id:
        el.append(E.EndToEndId(entry.end_to_end_id))
    el.extend([E.Reference(_clean(entry.narrative, 140)), E.BankRef(entry.journal)])
    return _document(event_id, created, client, el)


def test_event(*, event_id: str, created: dt.datetime, client: str, operator: str) -> bytes:
    """A test an operator sent from the console: it says who asked, and nothing else changed."""
    return _document(event_id, created, client, E.TestEvent(E.RequestedBy(operator)))
