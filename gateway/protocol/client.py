"""A DirectLink client: builds and signs Requests, posts them, and verifies the signed Responses.

Used by `directlink send`, the demo and the tests; ERP teams can use it as a reference client.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from lxml import etree

from gateway.protocol import signing
from gateway.protocol.messages import E
from gateway.protocol.xmlsafe import NS, q, text  # callers read them here too


def http_client(timeout: float = 30, *, tls_ca: Path | None = None, tls_certificate: Path | None = None,
                tls_key: Path | None = None) -> httpx.Client:
    """The HTTP transport to a gateway. For https, `tls_ca` is the CA bundle that issued the gateway's TLS
    certificate (default: the system's), and `tls_certificate` with `tls_key` the client certificate a
    gateway that requires mutual TLS asks for. TLS protects the transport only: every answer is still
    trusted for its XML signature alone (Client.post)."""
    if tls_key is not None and tls_certificate is None:
        raise ValueError("a TLS key without its certificate (tls_certificate)")
    context = trusting(tls_ca, "tls_ca")
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls_certificate is not None:
        load_tls_identity(context, tls_certificate, tls_key)
    return httpx.Client(timeout=timeout, verify=context)


def trusting(ca: Path | None, name: str) -> ssl.SSLContext:
    """A TLS context that trusts the CA certificates in `ca` (None: the system's); a ValueError names the
    setting `name` when the file is missing or holds no PEM certificate. The server checks its client CA
    with it too (gateway/transport.py)."""
    if ca is not None and not ca.is_file():
        raise ValueError(f"{name}: no such file: {ca}")
    try:
        return ssl.create_default_context(cafile=str(ca) if ca else None)
    except ssl.SSLError as err:
        raise ValueError(f"{name}: {ca} holds no PEM certificate ({err.reason})") from None


def load_tls_identity(context: ssl.SSLContext, certificate: Path, key: Path | None) -> None:
    """Load a TLS certificate (with its chain) and its private key, from one file or two, into `context`;
    a ValueError names the file that is missing or is not what it should be (ssl's own errors name neither).
    The server's TLS settings are checked with it too (gateway/transport.py)."""
    for name, path in (("tls_certificate", certificate), ("tls_key", key)):
        if path is not None and not path.is_file():
            raise ValueError(f"{name}: no such file: {path}")
    try:
        context.load_cert_chain(str(certificate), str(key) if key else None)
    except ssl.SSLError as err:
        where = f"{certificate} and {key}" if key else f"{certificate} (no tls_key given)"
        raise ValueError(f"tls_certificate: no PEM certificate with its private key in {where}"
                         + (f" ({err.reason})" if err.reason else "")) from None


@dataclass(frozen=True)
class Answer:
    """A verified Response: HTTP status, result code and text, the answer element (if any), the raw bytes."""

    status: int
    code: str
    detail: str
    body: etree._Element | None
    raw: bytes


class Client:
    def __init__(self, base_url: str, client: str, operator: str, key_pem: bytes, cert_pem: bytes,
                 gateway_cert_pem: bytes, http: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.client, self.operator = client, operator
        self.signer = signing.Signer.from_pem(key_pem, cert_pem)
        self.gateway_certs = trust_bundle(gateway_cert_pem)
        self.gateway_cert = self.gateway_certs[0]   # the first pinned (the one, without a bundle)
        self.http = http or httpx.Client(timeout=30)

    def request(self, operation: etree._Element, *, message_id: str | None = None,
                created: dt.datetime | None = None) -> bytes:
        """A signed Request around an operation element."""
        created = created or dt.datetime.now(dt.UTC).astimezone()
        root = E.Request(
            E.Header(E.MessageId(message_id or new_message_id()), E.Created(created.isoformat(timespec="seconds")),
                     E.Client(self.client), E.Operator(self.operator)),
            operation, version="1")
        return self.signer.sign(root)

    def sign_document(self, root: etree._Element) -> bytes:
        """Sign a Request read from a file, filling in MessageId and Created where they are empty."""
        head = root.find(q("Header"))
        for name, value in (("MessageId", new_message_id()),
                            ("Created", dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds")),
                            ("Client", self.client), ("Operator", self.operator)):
            el = head.find(q(name))
            if el is None:
                el = etree.SubElement(head, q(name))
            if not (el.text or "").strip() or name == "Operator":
                el.text = value
        order = {q("MessageId"): 0, q("Created"): 1, q("Client"): 2, q("Operator"): 3}
        head[:] = sorted(head, key=lambda c: order.get(c.tag, 9))
        return self.signer.sign(root)

    def post(self, body: bytes) -> Answer:
        """Post signed bytes; verify the answer's signature and that it answers exactly these bytes (its
        RequestDigest) under their MessageId (its InReplyTo)."""
        resp = self.http.post(f"{self.base_url}/v1/messages", content=body,
                              headers={"Content-Type": "application/xml"})
        return verify_answer(resp.status_code, resp.content, self.gateway_certs, signing.digest_b64(body),
                             in_reply_to=echoed_message_id(body))

    def call(self, operation: etree._Element, **kw: Any) -> Answer:
        return self.post(self.request(operation, **kw))


# The only answers the gateway signs before it has read a request, so without its RequestDigest: refusals
# that accepted nothing. Any other answer must name the request it answers.
UNBOUND_CODES = frozenset({"XML_TOO_LARGE", "OVERLOADED"})


# The MessageIds the gateway echoes in InReplyTo (spec section 2's Id35; others it leaves out, to keep its
# own answer valid against the schema).
_ECHOED = re.compile(r"[A-Za-z0-9._:\-]{1,35}", re.ASCII)
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def trust_bundle(pem: bytes) -> list[x509.Certificate]:
    """The gateway certificates a client trusts: one, or a bundle of several (PEM blocks one after another,
    text between them ignored), e.g. the current and the next during a key rollover (docs/deployment.md)."""
    found = x509.load_pem_x509_certificates(pem)
    if not found:   # pragma: no cover - the loader itself refuses a file without a certificate
        raise ValueError("no PEM certificate")
    return found


def verify_answer(status: int, raw: bytes, gateway_cert: x509.Certificate | Sequence[x509.Certificate],
                  request_digest: str | None, *, in_reply_to: str | None = None) -> Answer:
    """Verify a Response's signature against the pinned gateway certificate, or whichever certificate of a
    pinned bundle signed it, and bind it to our request: its RequestDigest must be `request_digest` and its
    InReplyTo, when it has one, `in_reply_to` (each when given). Only the refusals signed before a request is
    read (UNBOUND_CODES) may lack RequestDigest."""
    root = etree.fromstring(raw, _PARSER)
    sig = signing.signature_element(root)
    signing.check_profile(sig)
    signed = _verify_any(root, sig, [gateway_cert] if isinstance(gateway_cert, x509.Certificate) else gateway_cert)
    digest = signed.find(f"{q('Header')}/{q('RequestDigest')}")
    replied = signed.find(f"{q('Header')}/{q('InReplyTo')}")
    result = signed.find(q("Result"))
    if request_digest is not None:
        if digest is not None and text(digest) != request_digest:
            raise signing.SignatureRejected("the answer is for another request (RequestDigest differs)")
        if digest is None and result.get("code") not in UNBOUND_CODES:
            raise signing.SignatureRejected("the answer names no request (RequestDigest missing): it may be "
                                            "another request's, replayed")
    # Without InReplyTo (INTERNAL, answered before the MessageId was read back) RequestDigest alone binds it.
    if in_reply_to is not None and replied is not None and text(replied) != in_reply_to:
        raise signing.SignatureRejected(f"the answer is for another message (InReplyTo {text(replied)!r}, "
                                        f"not {in_reply_to!r})")
    body = next((el for el in signed[2:] if isinstance(el.tag, str) and el.tag.startswith(f"{{{NS}}}")), None)
    return Answer(status, result.get("code"), text(result.find(q("Text"))) or "", body, raw)


def _verify_any(root: etree._Element, sig: etree._Element, trusted: Sequence[x509.Certificate]) -> etree._Element:
    """The signed tree, verified with the trusted certificate the signature names in its KeyInfo (a hint,
    never trusted itself), else with each in turn; refused when none of them verifies it."""
    try:
        hint = signing.keyinfo_certificate(sig)
    except signing.SignatureRejected:   # only a hint: the verification below judges the signature
        hint = None
    ordered = sorted(trusted, key=lambda cert: cert != hint)
    refusal: signing.SignatureRejected | None = None
    for cert in ordered:
        try:
            return signing.verify(root, cert).signed
        except signing.SignatureRejected as err:
            refusal = refusal or err
    assert refusal is not None
    if len(ordered) > 1:
        raise signing.SignatureRejected(f"{refusal.detail} (with none of the {len(ordered)} pinned gateway "
                                        "certificates)")
    raise refusal


def echoed_message_id(request: bytes) -> str | None:
    """The MessageId of a signed request of ours, if it has the form the gateway echoes in InReplyTo."""
    value = text(etree.fromstring(request, _PARSER).find(f"{q('Header')}/{q('MessageId')}"))
    return value if value and _ECHOED.fullmatch(value) else None


def new_message_id() -> str:
    return f"ERP-{dt.datetime.now():%Y%m%d%H%M%S}-{secrets.token_hex(5)}"


# ---- operation builders ---------------------------------------------------------------------------------

def account_query() -> etree._Element:
    return E.AccountQuery()


def balance_query(*accounts: str, as_of: dt.date | None = None) -> etree._Element:
    el = E.BalanceQuery(*[E.Account(a) for a in accounts])
    if as_of:
        el.append(E.AsOf(as_of.isoformat()))
    return el


def payment(client_ref: str, debtor: str, amount: str, creditor_name: str, creditor_account: str, *,
            currency: str = "CNY", scheme: str = "INTERNAL", bank_code: str = "", bank_name: str | None = None,
            purpose: str = "货款", remark: str | None = None, urgency: str | None = None,
            requested_date: dt.date | None = None) -> etree._Element:
    creditor = E.Creditor(E.Name(creditor_name), E.Account(creditor_account), E.BankCode(bank_code, scheme=scheme))
    if bank_name:
        creditor.append(E.BankName(bank_name))
    el = E.Payment(E.ClientRef(client_ref), E.DebtorAccount(debtor), E.Amount(amount, currency=currency),
                   creditor, E.Purpose(purpose))
    if remark:
        el.append(E.Remark(remark))
    if requested_date:
        el.append(E.RequestedDate(requested_date.isoformat()))
    if urgency:
        el.append(E.Urgency(urgency))
    return el


def payment_order(*payments: etree._Element, batch_id: str | None = None, dry_run: bool = False) -> etree._Element:
    el = E.PaymentOrder(*([E.BatchId(batch_id)] if batch_id else []))
    el.extend(payments)
    if dry_run:
        el.set("dryRun", "true")
    return el


def cash_position(*accounts: str, days: int | None = None,
                  expected: tuple[tuple[str, str, str, str, str], ...] = ()) -> etree._Element:
    """expected: (account, date, CRDT|DBIT, amount, currency) items from the ERP's open items."""
    el = E.CashPositionQuery(*[E.Account(a) for a in accounts])
    if days is not None:
        el.append(E.Days(str(days)))
    for account, date, direction, amount, currency in expected:
        el.append(E.Expected(E.Account(account), E.Date(date), E.Direction(direction),
                             E.Amount(amount, currency=currency)))
    return el


def status_query(*client_refs: str, payment_ids: tuple[str, ...] = ()) -> etree._Element:
    return E.PaymentStatusQuery(*[E.ClientRef(r) for r in client_refs], *[E.PaymentId(i) for i in payment_ids])


def statement_query(account: str, after: str = "", limit: int | None = None,
                    fmt: str | None = None) -> etree._Element:
    el = E.StatementQuery(E.Account(account), E.After(after))
    if limit:
        el.append(E.Limit(str(limit)))
    if fmt:
        el.append(E.Format(fmt))
    return el


def receipt_query(*, payment_ids: tuple[str, ...] = (), numbers: tuple[str, ...] = (), account: str | None = None,
                  after: str | None = None, dates: tuple[dt.date, dt.date] | None = None, limit: int | None = None,
                  form: str | None = None) -> etree._Element:
    """Receipts by payment, by receipt number, or for one account after a cursor or between two dates."""
    el = E.ReceiptQuery(*[E.PaymentId(i) for i in payment_ids], *[E.ReceiptNo(n) for n in numbers])
    if account is not None:
        el.append(E.Account(account))
        if dates is not None:
            el.extend([E.From(dates[0].isoformat()), E.To(dates[1].isoformat())])
        else:
            el.append(E.After(after or ""))
        if limit:
            el.append(E.Limit(str(limit)))
    if form:
        el.append(E.Form(form))
    return el


def cancel(payment_id: str, comment: str | None = None) -> etree._Element:
    return E.PaymentCancel(E.PaymentId(payment_id), *([E.Comment(comment)] if comment else []))


def approval(payment_id: str, order_digest: str, decision: str = "APPROVE") -> etree._Element:
    return E.PaymentApproval(E.PaymentId(payment_id), E.OrderDigest(order_digest), E.Decision(decision))


def document_submit(data: bytes, fmt: str) -> etree._Element:
    """An ERP payment file as it is, base64 (its bytes and declared encoding reach the adapter untouched)."""
    import base64
    return E.DocumentSubmit(E.Document(base64.b64encode(data).decode("ascii"), format=fmt, encoding="base64"))
