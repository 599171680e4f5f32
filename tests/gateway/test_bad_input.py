"""Bad input: every result code of spec section 6 that the gateway can produce today, with its HTTP status,
always as a signed Response bound to the request bytes, and with no effect. Attacks follow
research/security.md sections 1 and 8 (XML, SIG, CRT, RPL, AUT, VAL)."""
from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import re
from decimal import Decimal

import pytest
from conftest import OPERATING, PAYROLL, SUPPLIER, booked_total, snapshot
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner
from signxml.algorithms import SignatureConstructionMethod
from sqlalchemy import select

from domain.codes import ReasonCode
from domain.errors import PaymentRejected
from domain.money import Money, parse_amount
from gateway import audit, directory, keys
from gateway.protocol import client as dl
from gateway.protocol import signing
from gateway.protocol.messages import E
from gateway.protocol.xmlsafe import q, text
from gateway.storage.tables import audit_log, payments

# Every signature verified here is also judged by signxml (tests/conftest.py, signxml_shadow). The SHA-1
# downgrades are forged with the demo operators' keys as RSA signatures: this module's homes have RSA keys.
pytestmark = [pytest.mark.usefixtures("signxml_shadow"), pytest.mark.key_type("rsa")]

UTC = dt.UTC
DS = f"{{{signing.DS}}}"
EXTERNAL = "31001234567890"                        # an account at another bank (CNAPS 102290012345)


# ---- helpers ----------------------------------------------------------------------------------------------

def envelope(op, *, client="DEMO", operator="maker", created=None, version="1"):
    """An unsigned Request built like Client.request, but open to mistakes before it is signed."""
    created = created or dt.datetime.now(UTC)
    stamp = created if isinstance(created, str) else created.isoformat(timespec="seconds")
    return E.Request(E.Header(E.MessageId(dl.new_message_id()), E.Created(stamp), E.Client(client),
                              E.Operator(operator)), op, version=version)


def pay(amount="100.00", account=SUPPLIER, *, ref="BAD-1", debtor=OPERATING, **kw):
    return dl.payment_order(dl.payment(ref, debtor, amount, "ACME", account, **kw))


def post_raw(http, home, body) -> dl.Answer:
    """Post any bytes; the answer must verify against the gateway certificate and quote these bytes."""
    resp = http.post("/v1/messages", content=body, headers={"Content-Type": "application/xml"})
    cert = x509.load_pem_x509_certificate(home.path(home.gateway_cert).read_bytes())
    return dl.verify_answer(resp.status_code, resp.content, cert,
                            signing.digest_b64(body) if isinstance(body, bytes) else None)


def unchanged(engine, before, *, messages=True):
    """Nothing moved; with messages=False the MessageId may be remembered (a verified, answered request)."""
    after = snapshot(engine)
    if not messages:
        before, after = ({k: v for k, v in s.items() if k != "messages"} for s in (before, after))
    assert after == before


def refused(gateway, send, status, code, *, messages=True):
    """`send()` must get a signed rejection with this status and code, and change nothing."""
    before = snapshot(gateway.engine)
    answer = send()
    assert (answer.status, answer.code) == (status, code), answer.detail
    assert answer.body is None
    unchanged(gateway.engine, before, messages=messages)
    return answer


def payment_outcomes(answer):
    assert (answer.status, answer.code) == (200, "OK"), answer.detail
    reasons = [s.find(q("Reason")) for s in answer.body.iterfind(q("PaymentStatus"))]
    return [(text(s.find(q("State"))), None if r is None else r.get("code"))
            for s, r in zip(answer.body.iterfind(q("PaymentStatus")), reasons)]


def payment_refused(gateway, client, order, reason):
    """The message is OK (HTTP 200) but its one payment is REJECTED with `reason`, and no money moved."""
    before = snapshot(gateway.engine)
    assert payment_outcomes(client.call(order)) == [("REJECTED", reason)]
    unchanged(gateway.engine, before, messages=False)


def edit(body: bytes, change) -> bytes:
    """Parse signed bytes, let `change(root)` alter the tree after signing, serialise again."""
    root = etree.fromstring(body)
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def after_declaration(body: bytes, insert: bytes) -> bytes:
    end = body.index(b"?>") + 2
    return body[:end] + insert + body[end:]


def sig(root):
    return root.find(f"{DS}Signature")


class Sha1Signer(XMLSigner):
    """signxml refuses SHA-1 by default; an attacker's library does not (security.md SIG-11)."""

    def check_deprecated_methods(self):
        pass


def sign_sha1(client, root, method, digest):
    s = Sha1Signer(SignatureConstructionMethod.enveloped, method, digest,
                   CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = s.sign(root, key=client.signer.key.private, cert=client.signer.cert_pem)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def attacker(common_name="DEMO/maker"):
    """A fresh key with a self-signed certificate copying the victim's subject."""
    key = keys.new_key()
    cert = keys.self_signed(key, common_name, "Demo Trading Co., Ltd.")
    return signing.Signer.from_pem(keys.key_pem(key), keys.cert_pem(cert))


# ---- XML: parsing, schema, constructs, encodings, size, version (400 / 413) -----------------------------

@pytest.mark.parametrize("cut", ["truncated", "empty", "garbage"])
def test_malformed_xml(maker, http, home, gateway, cut):
    """Not well-formed bytes (a transfer cut short, nothing, plain text) are XML_MALFORMED."""
    body = {"truncated": maker.request(pay())[:-40], "empty": b"", "garbage": b"hello, bank"}[cut]
    refused(gateway, lambda: post_raw(http, home, body), 400, "XML_MALFORMED")


MISTAKES = {
    "unknown element": lambda root: root.find(f"{q('PaymentOrder')}/{q('Payment')}").append(E.Evil("1")),
    "two Amount elements": lambda root: root.find(f".//{q('Amount')}").addnext(E.Amount("9", currency="CNY")),
    "missing Header": lambda root: root.remove(root.find(q("Header"))),
    "wrong root": lambda root: setattr(root, "tag", q("Order")),
    "foreign namespace": lambda root: setattr(root, "tag", "{urn:directlink:v2}Request"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_schema_invalid(maker, http, home, gateway, mistake):
    """Correctly signed documents that break the XSD (XML-11: no first-wins/last-wins differential)."""
    root = envelope(pay())
    MISTAKES[mistake](root)
    refused(gateway, lambda: post_raw(http, home, maker.signer.sign(root)), 400, "XML_SCHEMA_INVALID")


LAUGHS = (b'<!DOCTYPE Request [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                     for i in range(1, 10)) + b"]>")
XXE = b'<!DOCTYPE Request [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
XINCLUDE = b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
CONSTRUCTS = {
    "billion laughs": lambda b: after_declaration(b, LAUGHS).replace(b"<Purpose>", b"<Purpose>&lol9;"),
    "external entity": lambda b: after_declaration(b, XXE).replace(b"<Purpose>", b"<Purpose>&x;"),
    "XInclude": lambda b: b.replace(b"<Purpose>", b"<Purpose>" + XINCLUDE),
    "PI before root": lambda b: after_declaration(b, b'<?xml-stylesheet type="text/xsl" href="http://x.t"?>'),
    "PI inside root": lambda b: b.replace(b"<Header>", b"<?evil run?><Header>"),
}


@pytest.mark.parametrize("construct", CONSTRUCTS)
def test_forbidden_constructs(maker, http, home, gateway, construct):
    """DTDs, entities (billion laughs, XXE), XInclude and processing instructions around a signed order."""
    body = CONSTRUCTS[construct](maker.request(pay()))
    answer = refused(gateway, lambda: post_raw(http, home, body), 400, "XML_FORBIDDEN_CONSTRUCT")
    assert "root:" not in answer.detail and "lol" not in answer.detail  # no file content, no expansion


def _reencode(body: bytes, declaration: bytes, codec: str) -> bytes:
    rest = body[body.index(b"?>") + 2:]
    return (declaration + rest).decode("utf-8").encode(codec)


UTF16 = b'<?xml version="1.0" encoding="UTF-16"?>'
ENCODINGS = {   # case: (Purpose, what is done to the signed UTF-8 bytes)
    "GBK declared, UTF-8 bytes": ("货款", lambda b: b.replace(b"encoding='UTF-8'", b"encoding='GBK'")),
    "ISO-8859-1": ("goods", lambda b: b.replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'")),
    "ISO-8859-1 declared past byte 200": ("goods", lambda b: b.replace(
        b"encoding='UTF-8'", b" " * 240 + b"encoding='ISO-8859-1'")),
    "UTF-16 with BOM": ("货款", lambda b: _reencode(b, UTF16, "utf-16")),
    "UTF-16 without BOM": ("goods", lambda b: _reencode(b, UTF16, "utf-16-le")),
    "invalid UTF-8": ("货款", lambda b: b.replace("货款".encode(), b"\xe8\xb4")),
}


@pytest.mark.parametrize("case", ENCODINGS)
def test_encoding_invalid(maker, http, home, gateway, case):
    """Only UTF-8, GB18030 and GBK, and the declaration must match the bytes (XML-10): the order is
    correctly signed, so the encoding rule is the only thing that can stop it."""
    purpose, recode = ENCODINGS[case]
    body = recode(maker.request(pay(purpose=purpose)))
    refused(gateway, lambda: post_raw(http, home, body), 400, "XML_ENCODING_INVALID")


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit(http, home, gateway, streamed):
    """A body over max_body_bytes (10 MiB) is refused before parsing: 413 XML_TOO_LARGE."""
    body = b"<" + b"x" * gateway.settings.max_body_bytes
    content = iter([body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20)]) if streamed else body
    refused(gateway, lambda: post_raw(http, home, content), 413, "XML_TOO_LARGE")


@pytest.mark.parametrize("version", ["2", "0"])
def test_unsupported_version(maker, http, home, gateway, version):
    """A correctly signed request of another protocol version."""
    body = maker.signer.sign(envelope(pay(), version=version))
    refused(gateway, lambda: post_raw(http, home, body), 400, "UNSUPPORTED_VERSION")


# ---- signatures (401) -------------------------------------------------------------------------------------

def test_unsigned_request_is_sig_missing(maker, http, home, gateway):
    """Signature exclusion (SIG-07): the signature of a good order is simply deleted."""
    body = edit(maker.request(pay()), lambda root: root.remove(sig(root)))
    refused(gateway, lambda: post_raw(http, home, body), 401, "SIG_MISSING")


def document():
    return E.DocumentSubmit(E.Document("QUJD", format="acme.erp.v0", encoding="base64"))


def _doc(root):
    return root.find(f"{q('DocumentSubmit')}/{q('Document')}")


TAMPERING = {   # case: (operation, what is done to the signed bytes)
    "amount byte changed": (pay, lambda b: b.replace(b">100.00<", b">900.00<")),
    "signature not a child of the root": (document, lambda b: edit(b, lambda r: _doc(r).append(sig(r)))),
    "two signatures": (document, lambda b: edit(b, lambda r: _doc(r).append(etree.fromstring(
        etree.tostring(sig(r)))))),
    "reference URI not empty": (pay, lambda b: edit(b, lambda r: sig(r).find(
        f"{DS}SignedInfo/{DS}Reference").set("URI", "#Header"))),
    "garbled SignatureValue": (pay, lambda b: edit(b, lambda r: setattr(
        sig(r).find(f"{DS}SignatureValue"), "text", "!!not base64!!"))),
    "pretty-printed after signing": (pay, lambda b: etree.tostring(etree.fromstring(b), pretty_print=True)),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_sig_invalid(maker, http, home, gateway, case):
    """Anything wrong inside or around verification is SIG_INVALID, never a 500 (SIG-02/03/08/13/15)."""
    make, tamper = TAMPERING[case]
    body = tamper(maker.request(make()))
    refused(gateway, lambda: post_raw(http, home, body), 401, "SIG_INVALID")


def _edited(element, algorithm):
    """Signed with SHA-256, then an Algorithm edited (or a Transform added): the profile must fire first."""
    def change(root):
        target = sig(root).find(f"{DS}SignedInfo/{element}")
        if element.endswith("Transforms"):
            target.append(etree.Element(f"{DS}Transform", Algorithm=algorithm))
        else:
            target.set("Algorithm", algorithm)
    return lambda client, root: edit(client.signer.sign(root), change)


DOWNGRADES = {
    "RSA-SHA1, SHA-1 digest": lambda c, r: sign_sha1(c, r, SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA1),
    "SHA-1 digest": lambda c, r: sign_sha1(c, r, SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA1),
    "HMAC-SHA256": _edited(f"{DS}SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"),
    "inclusive C14N 1.1": _edited(f"{DS}CanonicalizationMethod", "http://www.w3.org/2006/12/xml-c14n11"),
    "extra XPath transform": _edited(f"{DS}Reference/{DS}Transforms",
                                     "http://www.w3.org/TR/1999/REC-xpath-19991116"),
}


@pytest.mark.parametrize("case", DOWNGRADES)
def test_sig_algorithm_forbidden(maker, http, home, gateway, case):
    """Algorithm downgrade and confusion (SIG-11/12/16): the profile is checked before any cryptography."""
    body = DOWNGRADES[case](maker, envelope(pay()))
    refused(gateway, lambda: post_raw(http, home, body), 401, "SIG_ALGORITHM_FORBIDDEN")


def test_comment_injected_into_signed_values_is_read_whole(maker, http, home, gateway):
    """Comment injection (SIG-06): comments are outside the digest, so the signature still verifies, but the
    gateway must read the whole signed value, never the text before the comment."""
    body = maker.request(pay("100.00", SUPPLIER, ref="CMT-1"))
    body = body.replace(f">{SUPPLIER}<".encode(), f">{SUPPLIER[:7]}<!-- -->{SUPPLIER[7:]}<".encode())
    body = body.replace(b">100.00<", b">1<!---->00.00<")
    before = {n: b for n, b, *_ in snapshot(gateway.engine)["accounts"]}
    assert payment_outcomes(post_raw(http, home, body)) == [("SETTLED", None)]
    after = {n: b for n, b, *_ in snapshot(gateway.engine)["accounts"]}
    assert after[SUPPLIER] - before[SUPPLIER] == 10000 and after[OPERATING] - before[OPERATING] == -10000


# ---- certificates (401) -----------------------------------------------------------------------------------

CERT_CASES = {
    "unknown operator": lambda m, v: m.signer.sign(envelope(pay(), operator="ghost")),
    "attacker certificate, same subject": lambda m, v: attacker().sign(envelope(pay())),
    "viewer's certificate claiming maker": lambda m, v: v.signer.sign(envelope(pay())),
}


@pytest.mark.parametrize("case", CERT_CASES)
def test_cert_unknown(maker, viewer, http, home, gateway, case):
    """Key substitution (SIG-09): only certificates pinned for Client/Operator are trusted, never KeyInfo."""
    refused(gateway, lambda: post_raw(http, home, CERT_CASES[case](maker, viewer)), 401, "CERT_UNKNOWN")


def test_signature_of_one_client_used_for_another(maker, http, home, gateway, clock):
    """Cross-tenant (SIG-17): DEMO's maker signs a valid order claiming <Client>ACME</Client> to debit ACME's
    account; ACME has an operator called maker too, with its own certificate."""
    with gateway.engine.begin() as conn:
        directory.upsert_operator(conn, "ACME", "maker", "ACME clerk", clock())
        directory.register_certificate(conn, "ACME", "maker", attacker("ACME/maker").cert_pem, clock())
        directory.set_grant(conn, "ACME", "maker", SUPPLIER, {"query", "pay"}, None, None, clock())
    body = maker.signer.sign(envelope(pay("100.00", OPERATING, debtor=SUPPLIER), client="ACME"))
    refused(gateway, lambda: post_raw(http, home, body), 401, "CERT_UNKNOWN")


@pytest.mark.parametrize("offset,code", [(dt.timedelta(days=800), "CERT_EXPIRED"),
                                         (dt.timedelta(days=-1), "CERT_NOT_YET_VALID")])
def test_certificate_outside_its_validity(maker, http, home, gateway, clock, offset, code):
    """The demo certificates are valid 730 days from init (minus 5 minutes); Created follows the clock."""
    clock.offset = offset
    refused(gateway, lambda: post_raw(http, home, maker.request(pay(), created=clock())), 401, code)


def test_revoked_certificate(maker, http, home, gateway, clock):
    """A certificate on the gateway's revocation list signs nothing any more."""
    with gateway.engine.begin() as conn:
        assert directory.revoke_certificate(conn, signing.fingerprint(maker.signer.certificate), clock())
    refused(gateway, lambda: post_raw(http, home, maker.request(pay())), 401, "CERT_REVOKED")


# ---- replay and freshness (401) ---------------------------------------------------------------------------

def test_same_message_id_with_other_content_is_replay(maker, gateway):
    """RPL-01: a MessageId already used by the client, now around a different order."""
    assert payment_outcomes(maker.call(pay(ref="RP-1"), message_id="ERP-RP-1")) == [("SETTLED", None)]
    refused(gateway, lambda: maker.call(pay("5.00", ref="RP-2"), message_id="ERP-RP-1"), 401, "REPLAY")


def test_identical_bytes_again_get_the_original_answer(maker, gateway):
    """A client that lost the answer resends the same bytes: the original answer byte for byte, no effect."""
    body = maker.request(pay(ref="RP-3"))
    first = maker.post(body)
    assert payment_outcomes(first) == [("SETTLED", None)]
    before = snapshot(gateway.engine)
    again = maker.post(body)
    assert (again.status, again.raw) == (first.status, first.raw)
    unchanged(gateway.engine, before)


def test_a_refused_write_keeps_only_its_answer_which_the_same_bytes_get_again(maker, gateway):
    """A writing operation that refuses (a cancellation of an unknown payment) rolls back whole; its answer
    is remembered under its MessageId, with its audit record: the same bytes get that answer again, and
    another order under the MessageId is a replay that pays nothing."""
    body = maker.request(dl.cancel("P20260101DEADBEEF0000"), message_id="ERP-RW-1")
    before = snapshot(gateway.engine)
    first = maker.post(body)
    assert (first.status, first.code) == (404, "NOT_FOUND"), first.detail
    unchanged(gateway.engine, before, messages=False)
    assert snapshot(gateway.engine)["messages"] == before["messages"] + 1
    again = maker.post(body)
    assert (again.status, again.raw) == (first.status, first.raw)
    refused(gateway, lambda: maker.call(pay(ref="RW-1"), message_id="ERP-RW-1"), 401, "REPLAY", messages=False)
    with gateway.engine.connect() as conn:
        codes = conn.execute(select(audit_log.c.code).where(audit_log.c.message_id == "ERP-RW-1")
                             .order_by(audit_log.c.seq)).scalars().all()
        assert codes == ["NOT_FOUND", "REPLAY"]
        assert audit.verify(conn)[1] == []


def test_requests_racing_under_one_message_id_act_once(maker, gateway):
    """A MessageId is claimed at its request's end. Of requests racing under one MessageId around different
    payments (from two accounts: no account lock orders them, and no ClientRef is shared), exactly one
    commits; the others roll back whole at the claim, run again and are answered REPLAY."""
    for round_ in range(3):
        bodies = [maker.request(pay("1.00", ref=f"RACE-{round_}-{i}", debtor=debtor), message_id=f"ERP-RACE-{round_}")
                  for i, debtor in enumerate((OPERATING, PAYROLL, OPERATING, PAYROLL))]
        with cf.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(maker.post, bodies))
        assert sorted(a.code for a in answers) == ["OK", "REPLAY", "REPLAY", "REPLAY"]
        won = next(a for a in answers if a.code == "OK")
        assert payment_outcomes(won) == [("SETTLED", None)]
    with gateway.engine.connect() as conn:
        refs = conn.execute(select(payments.c.client_ref).where(payments.c.client_ref.like("RACE-%"))).scalars()
        assert sorted(r.split("-")[1] for r in refs) == ["0", "1", "2"]   # one payment a round
        assert audit.verify(conn)[1] == []
    assert booked_total(gateway.engine) == 0


@pytest.mark.parametrize("skew,code", [(-301, "TIMESTAMP_OUT_OF_WINDOW"), (301, "TIMESTAMP_OUT_OF_WINDOW"),
                                       (-299, "OK"), (299, "OK")])
def test_created_must_be_within_the_window(maker, gateway, monkeypatch, skew, code):
    """RPL-02: Created more than 300 s from the gateway clock (frozen here) is refused; 299 s is fine."""
    frozen = dt.datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr(gateway, "clock", lambda: frozen)
    before = snapshot(gateway.engine)
    answer = maker.call(dl.balance_query(OPERATING), created=frozen + dt.timedelta(seconds=skew))
    assert (answer.status, answer.code) == ((200, "OK") if code == "OK" else (401, code)), answer.detail
    if code != "OK":
        unchanged(gateway.engine, before)


@pytest.mark.parametrize("where,value", [("Created", "2026-11-22T24:00:00+08:00"),
                                         ("Created", "10000-01-01T00:00:00Z"),
                                         ("AsOf", "2026-01-01+08:00"), ("RequestedDate", "2030-01-01Z")])
def test_dates_the_schema_accepts_never_cause_a_500(maker, http, home, gateway, where, value):
    """xs:dateTime allows 24:00:00 and 5-digit years, xs:date allows a zone; Python's fromisoformat does not.
    Such input is answered (refused as out of window / schema, or processed), never INTERNAL."""
    if where == "AsOf":
        root = envelope(E.BalanceQuery(E.Account(OPERATING), E.AsOf(value)))
    elif where == "RequestedDate":
        op = pay(ref="DATE-1")
        op.find(q("Payment")).find(q("Purpose")).addnext(E.RequestedDate(value))
        root = envelope(op)
    else:
        root = envelope(dl.balance_query(OPERATING), created=value)
    answer = post_raw(http, home, maker.signer.sign(root))
    allowed = {"TIMESTAMP_OUT_OF_WINDOW" if where == "Created" else "OK", "XML_SCHEMA_INVALID"}
    assert answer.code in allowed and answer.status < 500, (answer.status, answer.code, answer.detail)


# ---- grants (403 / 404) and formats (400) -----------------------------------------------------------------

def test_viewer_cannot_pay(viewer, gateway):
    """AUT-06: a query-only operator submits a payment: that payment is REJECTED, the message is OK."""
    payment_refused(gateway, viewer, pay(), "PERMISSION_DENIED")


@pytest.mark.parametrize("op", [lambda: dl.balance_query(OPERATING), lambda: dl.statement_query(OPERATING)],
                         ids=["BalanceQuery", "StatementQuery"])
def test_reading_without_query_grant_is_permission_denied(checker, gateway, clock, op):
    """AUT-02: read entitlement is separate: the checker keeps only 'approve' on the operating account."""
    with gateway.engine.begin() as conn:
        directory.set_grant(conn, "DEMO", "checker", OPERATING, {"approve"}, None, None, clock())
    refused(gateway, lambda: checker.call(op()), 403, "PERMISSION_DENIED", messages=False)


def test_unknown_and_foreign_accounts_look_the_same(maker, gateway):
    """An operator never learns whether an account exists when it holds no grant on it: both are 404."""
    answers = {account: refused(gateway, lambda account=account: maker.call(dl.balance_query(account)), 404, "NOT_FOUND",
                                messages=False)
               for account in ("6222999999999999", SUPPLIER)}     # no such account; ACME's account
    assert len({a.detail.replace(acc, "<account>") for acc, a in answers.items()}) == 1


@pytest.mark.parametrize("op", [lambda: dl.statement_query(OPERATING, fmt="no.such.format"), document],
                         ids=["StatementQuery", "DocumentSubmit"])
def test_unknown_format_is_unsupported(maker, gateway, op):
    """A format no adapter provides (names chosen so that adapters added later cannot match)."""
    refused(gateway, lambda: maker.call(op()), 400, "UNSUPPORTED_FORMAT", messages=False)


# ---- per-payment input validation (HTTP 200, payment REJECTED) --------------------------------------------

AMOUNT_TRAPS = ["1e3", "NaN", "Infinity", "１２３", "1_000", " 12", "-5", "+5", "0", "0.00", "1.001", "12."]


@pytest.mark.parametrize("amount", AMOUNT_TRAPS)
def test_amount_lexical_traps(maker, gateway, amount):
    """VAL-01: texts that Decimal()/int() would accept but the wire format does not."""
    payment_refused(gateway, maker, pay(amount), "AMOUNT_INVALID")


def test_amount_beyond_what_the_ledger_holds_is_rejected_not_a_500(maker, gateway, clock):
    """18 integer digits pass the amount pattern, but 10^20 fen do not fit a 64-bit ledger column."""
    with gateway.engine.begin() as conn:
        directory.set_grant(conn, "DEMO", "maker", PAYROLL, {"query", "pay"}, None, None, clock())
    before = snapshot(gateway.engine)
    [(state, reason)] = payment_outcomes(maker.call(pay("999999999999999999.99", debtor=PAYROLL)))
    assert state == "REJECTED" and reason in ("AMOUNT_INVALID", "INSUFFICIENT_FUNDS")
    unchanged(gateway.engine, before, messages=False)


@pytest.mark.parametrize("scheme,code", [("CNAPS", "10229001234"), ("CNAPS", "1022900123456"),
                                         ("CNAPS", "１０２２９００１２３４５"), ("BIC", "ICBKCN"), ("BIC", "ICBKCNBJX"),
                                         ("BIC", "ICBKCNBJXXXX"), ("INTERNAL", "102290012345")])
def test_bad_bank_codes(maker, gateway, scheme, code):
    """VAL-05: CNAPS is 12 ASCII digits, BIC 8 or 11 characters, INTERNAL carries no code."""
    creditor = SUPPLIER if scheme == "INTERNAL" else EXTERNAL
    payment_refused(gateway, maker, pay("1.00", creditor, scheme=scheme, bank_code=code), "BANK_CODE_INVALID")


# ---- the amount parser as a property (unit level, no gateway) ---------------------------------------------

def _spec_valid(s: str) -> bool:
    """Spec section 4: [0-9]+(\\.[0-9]+)?, more than zero, at most 2 decimals for CNY."""
    return re.fullmatch(r"[0-9]+(\.[0-9]{1,2})?", s, re.ASCII) is not None and Decimal(s) > 0


NEAR_MISS = st.text(alphabet="0123456789.,+-eE_ \t\n\u00a0１٣", max_size=12)
INVALID = st.one_of(NEAR_MISS, st.text(max_size=20), st.sampled_from(AMOUNT_TRAPS)).filter(
    lambda x: not _spec_valid(x))
VALID = st.from_regex(r"\A(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?\Z").filter(_spec_valid)   # zero-padding: below


@given(INVALID)
def test_any_text_outside_the_wire_format_is_amount_invalid(s):
    """Signs, exponents, blanks, separators, non-ASCII digits, 3 decimals, zero: all AMOUNT_INVALID."""
    with pytest.raises(PaymentRejected) as err:
        parse_amount(s, "CNY")
    assert err.value.reason == ReasonCode.AMOUNT_INVALID


@given(VALID)
def test_valid_amounts_round_trip_through_minor_units(s):
    """Every valid amount survives text -> minor units -> Money unchanged (no float, no rounding)."""
    money = parse_amount(s, "CNY")
    assert money.amount == Decimal(s)
    again = Money.from_minor(money.minor, "CNY")
    assert again == money and again.text() == money.text()


@pytest.mark.parametrize("s", ["01", "0100.00", "00.50"])
def test_leading_zeros_are_plain_decimals_per_the_spec(s):
    """Spec section 4 defines the lexical form as [0-9]+(\\.[0-9]+)?: zero-padded amounts (common in
    fixed-width ERP exports) are valid and mean the same value."""
    assert parse_amount(s, "CNY").amount == Decimal(s)
