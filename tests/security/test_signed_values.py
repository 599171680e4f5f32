"""Catalogue section A, Signature (security.md 1.4 and 8 A): SIG-06, comments, CDATA and character references
inside signed values. Exclusive C14N drops comments and writes CDATA and character references as text, so the
signature still verifies: the gateway must then read every value whole, never a truncated one.
"""
from __future__ import annotations

from conftest import OPERATING, SUPPLIER
from sqlalchemy import select

from gateway.protocol import signing
from gateway.protocol.xmlsafe import q, text
from gateway.storage.tables import entries
from gateway.storage.tables import messages as message_log
from security.attack_kit import balances, canonical, outcomes, pay, payment_rows, post, tree

# ---- comments, CDATA and character references inside signed values (SIG-06) ------------------------------

def _inject(body: bytes, pairs) -> bytes:
    for old, new in pairs:
        assert body.count(old) == 1, old
        body = body.replace(old, new)
    return body


def _accepted_whole(gateway, http, home, body, *, ref, amount_minor, debtor=OPERATING, creditor=SUPPLIER,
                    name="ACME", purpose="货款"):
    """The request verifies, is executed, and every value is the whole signed one (never a truncated one)."""
    before = balances(gateway.engine)
    answer, _ = post(http, home, body)
    assert outcomes(answer) == [("SETTLED", None)]
    [row] = payment_rows(gateway.engine)
    assert (row.client_ref, row.debtor_account, row.amount, row.creditor_account, row.creditor_name,
            row.purpose) == (ref, debtor, amount_minor, creditor, name, purpose)
    after = balances(gateway.engine)
    assert after[debtor] - before[debtor] == -amount_minor
    assert after[creditor] - before[creditor] == amount_minor
    with gateway.engine.connect() as conn:
        legs = {r.direction: r for r in conn.execute(select(entries).where(entries.c.payment_id == row.id))}
    debit = legs["DBIT"]
    assert (debit.account, debit.amount, debit.client_ref, debit.counterparty_account,
            debit.counterparty_name) == (debtor, amount_minor, ref, creditor, name)
    assert (legs["CRDT"].account, legs["CRDT"].amount, legs["CRDT"].counterparty_account) == (
        creditor, amount_minor, debtor)
    return answer, row


def _order_digest_as_signed(signed_body: bytes) -> str:
    p = tree(signed_body).find(f"{q('PaymentOrder')}/{q('Payment')}")
    return signing.digest_b64(canonical(p))


def test_comments_in_client_ref_account_and_amount(maker, http, home, gateway):
    """Comments split ClientRef, DebtorAccount, creditor Account and Amount; exc-C14N drops comments so the
    signature still verifies, and the gateway must book 1234.56 from 6222000000000001 under CMT-REF-0001."""
    signed = maker.request(pay("1234.56", ref="CMT-REF-0001"))
    body = _inject(signed, [(b">CMT-REF-0001<", b">CMT<!---->-REF-<!-- x -->0001<"),
                            (f">{OPERATING}<".encode(), f">6222<!---->{OPERATING[4:]}<".encode()),
                            (f">{SUPPLIER}<".encode(), f">{SUPPLIER[:7]}<!-- -->{SUPPLIER[7:]}<".encode()),
                            (b">1234.56<", b">1<!---->234<!---->.56<")])
    answer, row = _accepted_whole(gateway, http, home, body, ref="CMT-REF-0001", amount_minor=123456)
    digest = text(answer.body.find(f"{q('PaymentStatus')}/{q('OrderDigest')}"))
    assert digest == row.order_digest == _order_digest_as_signed(signed)


def test_comment_that_would_leave_a_smaller_amount(maker, http, home, gateway):
    """`9<!---->0.00`: a naive .text reads 9, the signed value is 90.00."""
    body = _inject(maker.request(pay("90.00", ref="CMT-2")), [(b">90.00<", b">9<!---->0.00<")])
    _accepted_whole(gateway, http, home, body, ref="CMT-2", amount_minor=9000)


def test_comments_in_the_header(maker, http, home, gateway):
    """Comments inside Client, Operator and MessageId: identity and the remembered MessageId are whole."""
    mid = "ERP-CMT-HEADER-0001"
    body = _inject(maker.request(pay(ref="CMT-3"), message_id=mid),
                   [(b">DEMO<", b">DE<!---->MO<"), (b">maker<", b">ma<!-- -->ker<"),
                    (f">{mid}<".encode(), b">ERP-CMT<!---->-HEADER-0001<")])
    _accepted_whole(gateway, http, home, body, ref="CMT-3", amount_minor=10000)
    with gateway.engine.connect() as conn:
        remembered = conn.execute(select(message_log.c.client_id, message_log.c.message_id)).all()
    assert remembered == [("DEMO", mid)]


def test_cdata_in_values_is_read_as_text(maker, http, home, gateway):
    """CDATA is only another way to write text (C14N writes it as text, so the signature still verifies)."""
    signed = maker.request(pay("321.00", ref="CDATA-1"))
    body = _inject(signed, [(b">321.00<", b"><![CDATA[321.00]]><"), (b">ACME<", b">AC<![CDATA[ME]]><"),
                            (b">CDATA-1<", b"><![CDATA[CDATA]]>-1<")])
    _accepted_whole(gateway, http, home, body, ref="CDATA-1", amount_minor=32100)


def test_character_references_in_values_are_read_as_characters(maker, http, home, gateway):
    """&#49; is '1' (a character reference, not an entity): same canonical form, same signature."""
    signed = maker.request(pay("100.00", ref="CHREF-1"))
    body = _inject(signed, [(b">100.00<", b">&#49;00&#x2e;00<"), (b">ACME<", b">&#65;CME<")])
    _accepted_whole(gateway, http, home, body, ref="CHREF-1", amount_minor=10000)


def test_cdata_that_hides_markup_stays_text(maker, http, home, gateway):
    """A signed Remark whose value looks like markup: it is text, written as CDATA after signing."""
    remark = "<Amount>9000.00</Amount>"
    signed = maker.request(pay(ref="CDATA-2", remark=remark))
    body = _inject(signed, [(b">&lt;Amount&gt;9000.00&lt;/Amount&gt;<",
                             b"><![CDATA[<Amount>9000.00</Amount>]]><")])
    _, row = _accepted_whole(gateway, http, home, body, ref="CDATA-2", amount_minor=10000)
    assert row.remark == remark
