"""Who is who: clients, their accounts, operators, registered certificates and grants.

The database is the source of truth (so every replica sees the same thing at once); `config/directory.toml`
is applied to it by `directlink init` and `directlink config apply`, and the CLI changes it piece by piece.
Every change is written to the audit log.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from domain.codes import Grant
from domain.money import Money, check_currency, parse_amount
from gateway import audit, ledger
from gateway.notify import outbox
from gateway.protocol import sm2
from gateway.protocol.signing import fingerprint
from gateway.storage.tables import accounts, approval_policies, certificates, clients, grants, operators
from gateway.storage.unit_of_work import UnitOfWork

_CERT_CACHE: dict[str, x509.Certificate] = {}  # by fingerprint: a certificate's content never changes


@dataclass(frozen=True)
class RegisteredCert:
    fingerprint: str
    certificate: x509.Certificate
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class AccountGrant:
    """An operator's rights on one account, with the account's own facts alongside."""

    account: str
    name: str
    currency: str
    grants: frozenset[Grant]
    single_limit: int | None
    daily_limit: int | None
    approve_limit: int | None = None

    def money(self, minor: int | None) -> Money | None:
        return None if minor is None else Money.from_minor(minor, self.currency)


# Built once: every request reads them (building a statement costs about as much as running it on SQLite).
_CERTS = select(certificates).where(certificates.c.client_id == bindparam("client"),
                                    certificates.c.operator_id == bindparam("operator")) \
    .order_by(certificates.c.not_before.desc())
_GRANTS = select(grants, accounts.c.name, accounts.c.currency) \
    .join(accounts, accounts.c.number == grants.c.account) \
    .where(grants.c.client_id == bindparam("client"), grants.c.operator_id == bindparam("operator"),
           accounts.c.client_id == bindparam("client")) \
    .order_by(grants.c.account)


def registered_certs(conn: Connection, client: str, operator: str) -> list[RegisteredCert]:
    """The certificates registered for an operator, newest first."""
    rows = conn.execute(_CERTS, {"client": client, "operator": operator}).all()
    result = []
    for row in rows:
        cert = _CERT_CACHE.get(row.fingerprint)
        if cert is None:
            cert = _CERT_CACHE[row.fingerprint] = x509.load_pem_x509_certificate(row.pem.encode("ascii"))
        result.append(RegisteredCert(row.fingerprint, cert, row.not_before, row.not_after, row.revoked_at))
    return result


def operator_grants(conn: Connection, client: str, operator: str) -> dict[str, AccountGrant]:
    """account number -> the operator's grant on it; accounts without a grant are simply absent."""
    rows = conn.execute(_GRANTS, {"client": client, "operator": operator}).all()
    result = {}
    for r in rows:
        rights = frozenset(g for g, on in ((Grant.QUERY, r.can_query), (Grant.PAY, r.can_pay),
                                           (Grant.APPROVE, r.can_approve)) if on)
        if rights:
            result[r.account] = AccountGrant(r.account, r.name, r.currency, rights, r.single_limit, r.daily_limit,
                                             r.approve_limit)
    return result


def audit_change(conn: Connection, now: dt.datetime, what: str, detail: str) -> None:
    """Audit a configuration change made in the caller's transaction (each with a unit of work of its own:
    these come from the CLI, one or a few a transaction)."""
    with UnitOfWork(conn) as uow:
        audit.append(uow, chain=audit.SYSTEM, at=now, kind="config", code=what, detail=detail)


def upsert_client(conn: Connection, client_id: str, name: str, now: dt.datetime) -> None:
    if conn.execute(select(clients.c.id).where(clients.c.id == client_id)).first() is None:
        conn.execute(insert(clients).values(id=client_id, name=name))
    else:
        conn.execute(update(clients).where(clients.c.id == client_id).values(name=name))
    audit_change(conn, now, "CLIENT_SET", f"{client_id} {name}")


def open_account(conn: Connection, number: str, client_id: str, name: str, currency: str,
                 opening: str | None, now: dt.datetime, today: dt.date) -> bool:
    """Open an account (funded from the bank's opening book if `opening` is given); False if it exists."""
    check_currency(currency)
    if not 1 <= len(name) <= 70:   # it travels as a protocol Name (AccountInfo, counterparty on statements)
        raise ValueError(f"account name must be 1-70 characters, got {len(name)}")
    if conn.execute(select(accounts.c.number).where(accounts.c.number == number)).first() is not None:
        conn.execute(update(accounts).where(accounts.c.number == number).values(name=name))
        return False
    conn.execute(insert(accounts).values(number=number, client_id=client_id, name=name, currency=currency,
                                         booked=0, held=0, entry_seq=0, opened_at=now))
    # The bank's own books for this currency exist before any payment needs them (no creation races).
    for book in ("OPENING", "CLEARING"):
        ledger.ensure_internal_account(conn, currency, book, now)
    if opening:
        amount = parse_amount(opening, currency).minor
        source = ledger.ensure_internal_account(conn, currency, "OPENING", now)
        with UnitOfWork(conn) as uow:
            booked = ledger.post(uow, f"OPEN-{number}"[:35], [
                ledger.Leg(number, ledger.CRDT, amount, "Opening balance", counterparty_name="Opening balance"),
                ledger.Leg(source, ledger.DBIT, amount, f"Opening balance of {number}"),
            ], now, today)
            outbox.posted(conn, booked, now)
    audit_change(conn, now, "ACCOUNT_OPENED", f"{number} {client_id} {currency} opening={opening or 0}")
    return True


def upsert_operator(conn: Connection, client_id: str, operator_id: str, name: str, now: dt.datetime) -> None:
    if conn.execute(select(clients.c.id).where(clients.c.id == client_id)).first() is None:
        raise ValueError(f"no client {client_id} for operator {operator_id}: add the client first")
    key = (operators.c.client_id == client_id) & (operators.c.id == operator_id)
    if conn.execute(select(operators.c.id).where(key)).first() is None:
        conn.execute(insert(operators).values(client_id=client_id, id=operator_id, name=name))
    else:
        conn.execute(update(operators).where(key).values(name=name))
    audit_change(conn, now, "OPERATOR_SET", f"{client_id}/{operator_id} {name}")


def require_operator(conn: Connection, client_id: str, operator_id: str) -> None:
    """ValueError naming the operator when it is not in the directory: said plainly, before a foreign key
    refuses the row in the database's words (or, without one, the row names nobody)."""
    key = (operators.c.client_id == client_id) & (operators.c.id == operator_id)
    if conn.execute(select(operators.c.id).where(key)).first() is None:
        raise ValueError(f"no operator {operator_id} of client {client_id}: `directlink config apply` adds "
                         "operators")


def set_operator_enabled(conn: Connection, client_id: str, operator_id: str, enabled: bool,
                         now: dt.datetime) -> bool:
    """Enable or disable an operator from the next request on, on every replica (each request reads the
    flag in its first statement); audited. False if it already was so (nothing changes, nothing is audited);
    ValueError for an operator that does not exist."""
    key = (operators.c.client_id == client_id) & (operators.c.id == operator_id)
    row = conn.execute(select(operators.c.disabled_at).where(key).with_for_update()).first()
    if row is None:
        raise ValueError(f"no operator {operator_id} of client {client_id}")
    if (row.disabled_at is None) == enabled:
        return False
    conn.execute(update(operators).where(key).values(disabled_at=None if enabled else now))
    audit_change(conn, now, "OPERATOR_ENABLED" if enabled else "OPERATOR_DISABLED", f"{client_id}/{operator_id}")
    return True


def register_certificate(conn: Connection, client_id: str, operator_id: str, pem: bytes,
                         now: dt.datetime, *, check_validity: bool = True) -> str:
    """Register (pin) a certificate for an operator; returns its fingerprint. Re-registering it for the same
    operator is a no-op. Refused (ValueError, nothing written): a certificate registered to another
    operator (one key speaks for one person), one outside its validity at `now` (it could not sign a request
    anyway; `check_validity=False` lets a test register one to see the request refused), a key type the
    profile does not allow."""
    require_operator(conn, client_id, operator_id)
    cert = x509.load_pem_x509_certificate(pem)
    check_key(cert)
    fp = fingerprint(cert)
    if check_validity:
        if cert.not_valid_after_utc <= now:
            raise ValueError(f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: "
                             "ask the operator for a current one")
        if cert.not_valid_before_utc > now:
            raise ValueError(f"the certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} "
                             "UTC: register it from then on")
    owner = conn.execute(select(certificates.c.client_id, certificates.c.operator_id)
                         .where(certificates.c.fingerprint == fp)).first()
    if owner is not None and (owner.client_id, owner.operator_id) != (client_id, operator_id):
        raise ValueError(f"the certificate is registered to {owner.client_id}/{owner.operator_id} already: "
                         "each operator signs with a certificate of their own")
    if owner is None:
        conn.execute(insert(certificates).values(
            fingerprint=fp, client_id=client_id, operator_id=operator_id, pem=pem.decode("ascii"),
            not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, added_at=now))
        audit_change(conn, now, "CERT_REGISTERED", f"{client_id}/{operator_id} {fp}")
    return fp


def check_key(cert: x509.Certificate) -> None:
    """Only keys the signature profile allows may be registered: RSA of 2048 bits or more, P-256, or SM2."""
    if sm2.public_key_of(cert) is not None:
        return
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return
    raise ValueError("the certificate's key is not RSA-2048+, ECDSA P-256 or SM2 (spec section 3)")


def revoke_certificate(conn: Connection, fp: str, now: dt.datetime) -> bool:
    """Mark a certificate revoked from now on; every replica sees it on the next request."""
    done = conn.execute(update(certificates).where(certificates.c.fingerprint == fp,
                                                   certificates.c.revoked_at.is_(None))
                        .values(revoked_at=now)).rowcount == 1
    if done:
        audit_change(conn, now, "CERT_REVOKED", fp)
    return done


def set_grant(conn: Connection, client_id: str, operator_id: str, account: str, rights: set[str],
              single_limit: str | None, daily_limit: str | None, now: dt.datetime,
              approve_limit: str | None = None) -> None:
    """Give an operator exactly `rights` on an account (an empty set removes them), with optional limits."""
    currency = conn.execute(select(accounts.c.currency).where(
        accounts.c.number == account, accounts.c.client_id == client_id)).scalar()
    if currency is None:
        raise ValueError(f"account {account} does not belong to client {client_id}")
    require_operator(conn, client_id, operator_id)
    unknown = set(rights) - {g.value for g in Grant}
    if unknown:
        raise ValueError(f"unknown grants {sorted(unknown)} (query, pay, approve)")
    values = dict(can_query=Grant.QUERY in rights, can_pay=Grant.PAY in rights,
                  can_approve=Grant.APPROVE in rights,
                  single_limit=parse_amount(single_limit, currency).minor if single_limit else None,
                  daily_limit=parse_amount(daily_limit, currency).minor if daily_limit else None,
                  approve_limit=parse_amount(approve_limit, currency).minor if approve_limit else None)
    key = (grants.c.client_id == client_id) & (grants.c.operator_id == operator_id) & (grants.c.account == account)
    if conn.execute(select(grants.c.account).where(key)).first() is None:
        conn.execute(insert(grants).values(client_id=client_id, operator_id=operator_id, account=account, **values))
    else:
        conn.execute(update(grants).where(key).values(**values))
    audit_change(conn, now, "GRANT_SET", f"{client_id}/{operator_id} {account} {sorted(rights)} "
                                         f"single={single_limit} daily={daily_limit} approve={approve_limit}")


def set_approval_policy(conn: Connection, client_id: str, account: str, threshold: str, approvals: int,
                        now: dt.datetime, currency: str = "CNY") -> None:
    """Payments of `client_id` at or above `threshold` need `approvals` distinct approvers: on `account`
    (in its currency), or for "" on every account of the client in `currency`. approvals=0 removes the tier."""
    if account:
        currency = conn.execute(select(accounts.c.currency).where(
            accounts.c.number == account, accounts.c.client_id == client_id)).scalar()
        if currency is None:
            raise ValueError(f"account {account} does not belong to client {client_id}")
    minor = parse_amount(threshold, currency).minor
    key = ((approval_policies.c.client_id == client_id) & (approval_policies.c.account == account)
           & (approval_policies.c.currency == currency) & (approval_policies.c.threshold == minor))
    conn.execute(delete(approval_policies).where(key))
    if approvals > 0:
        conn.execute(insert(approval_policies).values(client_id=client_id, account=account, currency=currency,
                                                      threshold=minor, approvals=approvals))
    audit_change(conn, now, "POLICY_SET", f"{client_id} {account or '*'} {currency} >= {threshold}: "
                                          f"{approvals} approval(s)")


@dataclass(frozen=True)
class ApprovalTiers:
    """A client's approval tiers, (account or "", currency, threshold, approvals): read once per request."""

    tiers: tuple[tuple[str, str, int, int], ...]

    def required(self, account: str, currency: str, amount: int) -> int:
        """Approvals a payment needs: the most that any tier it reaches asks for, whether the tier is the
        account's own or client-wide for its currency (an account tier can add approvals, never remove them)."""
        return max((n for where, ccy, threshold, n in self.tiers
                    if ccy == currency and where in (account, "") and threshold <= amount), default=0)


_TIERS = select(approval_policies.c.account, approval_policies.c.currency, approval_policies.c.threshold,
                approval_policies.c.approvals).where(approval_policies.c.client_id == bindparam("client"))


def approval_tiers(conn: Connection, client_id: str) -> ApprovalTiers:
    return ApprovalTiers(tuple(tuple(r) for r in conn.execute(_TIERS, {"client": client_id})))


def required_approvals(conn: Connection, client_id: str, account: str, currency: str, amount: int) -> int:
    return approval_tiers(conn, client_id).required(account, currency, amount)
