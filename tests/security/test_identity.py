"""Catalogue sections A and F (security.md 8 A, 8 F; also 8 C, RPL-06): who signs for whom.
SIG-17 another client's operator signing for this client or paying from its account (AUT-02, account
entitlement across clients); AUT-01 identities that differ only in case; SIG-18/RPL-06 the gateway's own
signed responses posted back as requests; SIG-05 the signed Header (Client, Operator, MessageId, Created)
changed after signing.
"""
from __future__ import annotations

import datetime as dt

import pytest
from conftest import OPERATING, snapshot

from gateway.protocol import client as dl
from gateway.protocol.xmlsafe import q
from security.attack_kit import (
    BETA_ACCOUNT,
    DS,
    EVIL,
    UTC,
    dump,
    envelope,
    forge,
    outcomes,
    pay,
    post,
    refused,
    sig,
    tree,
)

# ---- identity (SIG-17, AUT-01/02, SIG-18/RPL-06, SIG-05) ------------------------------------------------

def test_other_clients_operator_signs_for_this_client(beta, http, home, gateway):
    """BETA's maker (a valid, registered signature) claims Client DEMO / Operator maker to debit DEMO."""
    body = beta.signer.sign(envelope(pay(EVIL)))
    refused(gateway, http, home, body, 401, "CERT_UNKNOWN")


def test_other_clients_operator_signs_for_this_client_without_keyinfo(beta, http, home, gateway):
    """The same without KeyInfo, so the gateway must try DEMO/maker's pinned certificates: none verifies."""
    body = forge(envelope(pay(EVIL)), beta.signer.key.private, None)
    refused(gateway, http, home, body, 401, "SIG_INVALID")


def test_other_client_pays_from_this_clients_account(beta, http, home, gateway):
    """BETA's maker signs as itself (identity is good) but debits DEMO's operating account: the message is
    answered (the MessageId is BETA's to use up) and the payment is refused without a trace."""
    before = snapshot(gateway.engine)
    answer, _ = post(http, home, beta.request(pay(EVIL, creditor=BETA_ACCOUNT)))
    assert outcomes(answer) == [("REJECTED", "ACCOUNT_INVALID")]
    after = snapshot(gateway.engine)
    assert after["messages"] == before["messages"] + 1
    before.pop("messages"), after.pop("messages")
    assert after == before


def test_other_client_queries_this_clients_balance(beta, http, home, gateway):
    """A verified BETA request for DEMO's balance is NOT_FOUND, as for an account that does not exist."""
    refused(gateway, http, home, beta.request(dl.balance_query(OPERATING)), 404, "NOT_FOUND", verified=True)


@pytest.mark.parametrize("client,operator", [("demo", "maker"), ("DEMO", "Maker"), ("DEMO", "MAKER")])
def test_identity_is_not_case_folded(maker, http, home, gateway, client, operator):
    """The maker signs as demo/maker or DEMO/Maker: identities are exact (no case-folding collation on either
    database), so no certificate is registered for the claimed one."""
    body = maker.signer.sign(envelope(pay(EVIL), client=client, operator=operator))
    refused(gateway, http, home, body, 401, "CERT_UNKNOWN")


def test_signed_response_posted_back_as_a_request(maker, http, home, gateway):
    """An answer of the gateway (a validly signed Response) replayed to it as if it were a request."""
    answer = maker.call(dl.balance_query(OPERATING))
    assert answer.code == "OK"
    refused(gateway, http, home, answer.raw, 400, "XML_SCHEMA_INVALID")


def test_signed_response_renamed_to_request(maker, http, home, gateway):
    """The gateway's own ds:Signature (from a Response) put under a Request: the gateway's certificate in
    KeyInfo is registered for no operator, and without KeyInfo the signature matches no pinned certificate."""
    answer = maker.call(dl.balance_query(OPERATING))
    root = tree(answer.raw)
    gw_sig = sig(root)
    forged = envelope(dl.balance_query(OPERATING))
    forged.append(gw_sig)
    refused(gateway, http, home, dump(forged), 401, "CERT_UNKNOWN")
    gw_sig.remove(gw_sig.find(f"{DS}KeyInfo"))
    refused(gateway, http, home, dump(forged), 401, "SIG_INVALID")


def _header(root, name, value):
    root.find(f"{q('Header')}/{q(name)}").text = value


HEADER_CHANGES = {   # case: (element, new value, strip KeyInfo, code)
    "Client changed": ("Client", "ACME", False, "CERT_UNKNOWN"),
    "Operator changed to checker": ("Operator", "checker", False, "CERT_UNKNOWN"),
    "Operator changed to checker, no KeyInfo": ("Operator", "checker", True, "SIG_INVALID"),
    "MessageId changed": ("MessageId", "ERP-EVIL-1", False, "SIG_INVALID"),
    "Created changed": ("Created", None, False, "SIG_INVALID"),
}


@pytest.mark.parametrize("case", HEADER_CHANGES)
def test_header_changed_after_signing(maker, http, home, gateway, case):
    """The Header is inside the signature: changing who, which message or when after signing never works."""
    name, value, strip, code = HEADER_CHANGES[case]
    root = tree(maker.request(pay()))
    if value is None:
        value = (dt.datetime.now(UTC) + dt.timedelta(seconds=60)).isoformat(timespec="seconds")
    _header(root, name, value)
    if strip:
        sig(root).remove(sig(root).find(f"{DS}KeyInfo"))
    refused(gateway, http, home, dump(root), 401, code)
