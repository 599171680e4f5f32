"""The database schema. Money is integer minor units (fen): never floats, never SQLite's lossy NUMERIC.

Changing a table here means adding an Alembic revision under migrations/versions/.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = MetaData()

clients = Table(
    "clients", metadata,
    Column("id", String(35), primary_key=True),
    Column("name", String(140), nullable=False),
)

accounts = Table(
    "accounts", metadata,
    Column("number", String(34), primary_key=True),
    Column("client_id", String(35), ForeignKey("clients.id"), nullable=True),  # NULL: the bank's own books
    Column("name", String(140), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("booked", BigInteger, nullable=False, default=0),
    Column("held", BigInteger, nullable=False, default=0),
    Column("entry_seq", BigInteger, nullable=False, default=0),  # last EntryId booked on this account
    Column("opened_at", UtcDateTime, nullable=False),
)

operators = Table(
    "operators", metadata,
    Column("client_id", String(35), ForeignKey("clients.id"), primary_key=True),
    Column("id", String(35), primary_key=True),
    Column("name", String(140), nullable=False),
    # Set by `directlink operators disable`: from then on every request of the operator is refused
    # (PERMISSION_DENIED), read by each request's first statement on every replica; NULL: enabled.
    Column("disabled_at", UtcDateTime, nullable=True),
)

certificates = Table(
    "certificates", metadata,
    Column("fingerprint", String(64), primary_key=True),  # SHA-256 of the DER, hex
    Column("client_id", String(35), nullable=False),
    Column("operator_id", String(35), nullable=False),
    Column("pem", Text, nullable=False),
    Column("not_before", UtcDateTime, nullable=False),
    Column("not_after", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("added_at", UtcDateTime, nullable=False),
    ForeignKeyConstraint(["client_id", "operator_id"], ["operators.client_id", "operators.id"]),
    Index("ix_certificates_operator", "client_id", "operator_id"),
)

grants = Table(
    "grants", metadata,
    Column("client_id", String(35), primary_key=True),
    Column("operator_id", String(35), primary_key=True),
    Column("account", String(34), ForeignKey("accounts.number"), primary_key=True),
    Column("can_query", Boolean, nullable=False, default=False),
    Column("can_pay", Boolean, nullable=False, default=False),
    Column("can_approve", Boolean, nullable=False, default=False),
    Column("single_limit", BigInteger, nullable=True),   # minor units; NULL: no limit
    Column("daily_limit", BigInteger, nullable=True),
    Column("approve_limit", BigInteger, nullable=True),  # largest payment this approver may approve
    ForeignKeyConstraint(["client_id", "operator_id"], ["operators.client_id", "operators.id"]),
)

payments = Table(
    "payments", metadata,
    Column("id", String(35), primary_key=True),
    Column("client_id", String(35), nullable=False),
    Column("client_ref", String(35), nullable=False),
    Column("end_to_end_id", String(35), nullable=False),
    Column("batch_id", String(35), nullable=True),
    Column("debtor_account", String(34), ForeignKey("accounts.number"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("creditor_name", String(70), nullable=False),
    Column("creditor_account", String(34), nullable=False),
    Column("creditor_bank_scheme", String(8), nullable=False),
    Column("creditor_bank_code", String(12), nullable=False),
    Column("creditor_bank_name", String(70), nullable=True),
    Column("purpose", String(60), nullable=False),
    Column("remark", String(140), nullable=True),
    Column("requested_date", Date, nullable=False),
    Column("urgency", String(8), nullable=False),
    Column("state", String(20), nullable=False),
    Column("reason_code", String(35), nullable=True),
    Column("reason_text", String(255), nullable=True),
    Column("order_digest", String(44), nullable=False),   # base64 SHA-256 of the exc-c14n Payment element
    Column("content_hash", String(64), nullable=False),   # what idempotency compares
    Column("maker", String(35), nullable=False),
    Column("approvals_required", Integer, nullable=False, default=0),
    Column("approvals_given", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),        # last hand-over to clearing
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("creditor_key", String(420), nullable=True),   # domain.names.key(creditor_name), for the rules
    Column("rule_hits", Text, nullable=True),             # JSON list of the rules that fired (domain/rules.py)
    Column("payment_info_id", String(35), nullable=True),  # pain.001 PmtInfId, for pain.002 OrgnlPmtInfId
    UniqueConstraint("client_id", "client_ref", name="uq_payments_client_ref"),  # idempotency, forever
    # The rules stage's reads (gateway/rule_facts.py); state, amount and currency ride along so that reading a
    # payee's newest amounts (the anomaly rule's history) never visits the table. These and the partial
    # indexes below lead with the account (or the payee's name key): only the ClientRef's own index leads
    # with client_id, which PostgreSQL without statistics would otherwise take any of (migration 0011).
    Index("ix_payments_payee_account", "creditor_account", "client_id", "created_at", "state", "amount", "currency"),
    Index("ix_payments_payee_name", "creditor_key", "client_id", "created_at"),
    Index("ix_payments_debtor_recent", "debtor_account", "created_at", "state", "amount"),
    # A probable duplicate is found among the payee's payments of the same amount only.
    Index("ix_payments_payee_amount", "creditor_account", "client_id", "amount", "created_at"),
)

# Payments that have left the live states (domain.rules.LIVE) are few: the running totals below count every
# payment created, and these partial indexes find the ones to take out again without reading the others.
# The reads must spell the predicate exactly so (gateway/flows.py uses GONE_STATES) for the index to apply;
# they cover the reads (state and amount ride along), else SQLite, which keeps no statistics unless asked,
# prefers walking the whole window through the covering ix_payments_debtor_recent.
GONE_STATES = "state IN ('CANCELLED', 'FAILED', 'REJECTED', 'RETURNED')"
Index("ix_payments_gone_debtor", payments.c.debtor_account, payments.c.created_at, payments.c.state,
      payments.c.amount, sqlite_where=text(GONE_STATES), postgresql_where=text(GONE_STATES))
Index("ix_payments_gone_payee", payments.c.creditor_account, payments.c.client_id, payments.c.created_at,
      payments.c.state, payments.c.currency, payments.c.amount,
      sqlite_where=text(GONE_STATES), postgresql_where=text(GONE_STATES))
Index("ix_payments_gone_maker", payments.c.debtor_account, payments.c.maker, payments.c.client_id,
      payments.c.created_at, payments.c.state, payments.c.amount,
      sqlite_where=text(GONE_STATES), postgresql_where=text(GONE_STATES))

# Running totals of the payments created, per account and minute (gateway/flows.py): what the fund-flow
# rules count over a window (a payee's payments today, an account's velocity) is read from a few of these
# rows instead of every payment of the window. Side "D" counts by debtor account, "C" by payee account.
payment_flows = Table(
    "payment_flows", metadata,
    Column("side", String(1), primary_key=True),
    Column("client_id", String(35), primary_key=True),
    Column("account", String(34), primary_key=True),
    Column("minute", BigInteger, primary_key=True),        # minutes since 1970-01-01 00:00 UTC
    Column("currency", String(3), primary_key=True),       # (after the minute: a velocity window takes all)
    Column("payments", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
)

# Running totals of each maker's payments per debtor account and quarter hour (gateway/maker_totals.py): the
# daily limit's count is read from at most 96 of these rows instead of every payment of the day.
maker_totals = Table(
    "maker_totals", metadata,
    Column("client_id", String(35), primary_key=True),
    Column("maker", String(35), primary_key=True),
    Column("account", String(34), primary_key=True),
    Column("quarter", BigInteger, primary_key=True),       # quarter hours since 1970-01-01 00:00 UTC
    Column("amount", BigInteger, nullable=False),
)

payment_events = Table(
    "payment_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("payment_id", String(35), ForeignKey("payments.id"), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("from_state", String(20), nullable=True),
    Column("to_state", String(20), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("reason", String(255), nullable=True),
)

holds = Table(
    "holds", metadata,
    Column("payment_id", String(35), ForeignKey("payments.id"), primary_key=True),
    Column("account", String(34), ForeignKey("accounts.number"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("placed_at", UtcDateTime, nullable=False),
    Column("released_at", UtcDateTime, nullable=True),
    Index("ix_holds_account", "account", "placed_at"),
)

entries = Table(
    "entries", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account", String(34), ForeignKey("accounts.number"), nullable=False),
    # Per-account sequence, assigned while the account row is locked: entries of one account become
    # visible in seq order, so a cursor on seq never skips a late-committing entry.
    Column("seq", BigInteger, nullable=False),
    Column("journal", String(35), nullable=False),        # BankRef: the legs of one posting share it
    Column("booked_at", UtcDateTime, nullable=False),
    Column("value_date", Date, nullable=False),
    Column("direction", String(4), nullable=False),       # CRDT | DBIT
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("counterparty_name", String(70), nullable=True),
    Column("counterparty_account", String(34), nullable=True),
    Column("counterparty_scheme", String(8), nullable=True),
    Column("counterparty_code", String(12), nullable=True),
    Column("client_ref", String(35), nullable=True),
    Column("end_to_end_id", String(35), nullable=True),
    Column("narrative", String(140), nullable=False),
    Column("reversal", Boolean, nullable=False, default=False),
    Column("payment_id", String(35), nullable=True),
    UniqueConstraint("account", "seq", name="uq_entries_account_seq"),
    Index("ix_entries_account_booked", "account", "booked_at"),
)

approval_policies = Table(
    "approval_policies", metadata,
    Column("client_id", String(35), ForeignKey("clients.id"), primary_key=True),
    Column("account", String(34), primary_key=True),      # "" = every account of the client ...
    Column("currency", String(3), primary_key=True),      # ... in this currency
    Column("threshold", BigInteger, primary_key=True),    # payments at or above this (minor units) ...
    Column("approvals", Integer, nullable=False),         # ... need this many distinct approvers
)

payment_approvals = Table(
    "payment_approvals", metadata,
    Column("payment_id", String(35), ForeignKey("payments.id"), primary_key=True),
    Column("approver", String(35), primary_key=True),     # one decision per approver: distinctness by key
    Column("decision", String(8), nullable=False),        # APPROVE | REJECT
    Column("at", UtcDateTime, nullable=False),
    Column("comment", String(140), nullable=True),
)

# The simulated clearing system on the other side (CNAPS or a correspondent). It keeps its own records,
# keyed by our PaymentId, so that an unknown outcome can be asked about and a re-send is idempotent.
sim_clearing = Table(
    "sim_clearing", metadata,
    Column("payment_id", String(35), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("outcome", String(10), nullable=False),        # SETTLED | FAILED
    Column("reason", String(140), nullable=True),
    Column("returned_at", UtcDateTime, nullable=True),    # set when the creditor's bank sends it back
    Column("return_reason", String(140), nullable=True),
)

# Abuse limits shared by the replicas on PostgreSQL (gateway/limits.py): a token bucket a client, and one a
# client's operator if operators are limited too. Each replica takes a few tokens at a time in a statement of its
# own; SQLite, one process, keeps its buckets in memory and never writes here.
rate_buckets = Table(
    "rate_buckets", metadata,
    Column("bucket", String(72), primary_key=True),      # "CLIENT" or "CLIENT/OPERATOR"
    Column("tokens", Float, nullable=False),              # left after the last claim
    Column("granted", Integer, nullable=False),           # what the last claim took (its RETURNING)
    Column("stamp", UtcDateTime, nullable=False),         # the database's clock at the last claim
)

messages = Table(
    "messages", metadata,
    Column("client_id", String(35), primary_key=True),
    Column("message_id", String(35), primary_key=True),
    Column("request_digest", String(44), nullable=False),
    Column("received_at", UtcDateTime, nullable=False, index=True),
    Column("http_status", Integer, nullable=False),
    Column("response", LargeBinary, nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("chain", String(40), nullable=True),           # one hash chain per client, plus system/unverified
    Column("seq", BigInteger, nullable=True),             # position in its chain
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(20), nullable=False),           # request | payment | config
    Column("client_id", String(35), nullable=True),
    Column("operator_id", String(35), nullable=True),
    Column("message_id", String(35), nullable=True),
    Column("code", String(35), nullable=False),
    Column("detail", Text, nullable=True),
    Column("request_digest", String(44), nullable=True),
    Column("payment_id", String(35), nullable=True, index=True),
    Column("from_state", String(20), nullable=True),
    Column("to_state", String(20), nullable=True),
    Column("cert_fingerprint", String(64), nullable=True),
    Column("request", LargeBinary, nullable=True),        # the exact bytes received
    Column("response", LargeBinary, nullable=True),       # the exact bytes answered
    Column("prev_hash", String(64), nullable=True),
    Column("hash", String(64), nullable=True),
    UniqueConstraint("chain", "seq", name="uq_audit_log_chain_seq"),
)

# One row per scheduled job run: the primary key lets exactly one replica claim each due time.
job_runs = Table(
    "job_runs", metadata,
    Column("job", String(40), primary_key=True),
    Column("due", UtcDateTime, primary_key=True),
    Column("runner", String(80), nullable=False),          # host:pid of the process that ran it
    Column("started_at", UtcDateTime, nullable=False),
)

# The head of each audit chain, locked by every append to it, so records chain in commit order while
# different clients' transactions never wait for each other.
audit_head = Table(
    "audit_head", metadata,
    Column("chain", String(40), primary_key=True),
    Column("seq", BigInteger, nullable=False),             # last record appended
    Column("hash", String(64), nullable=False),
    Column("base_seq", BigInteger, nullable=False),        # records up to here were purged (retention) ...
    Column("base_hash", String(64), nullable=False),       # ... and this was the hash of the last of them
)

# --- issue 5: notifications (migration 0005) ---

# Where a client wants to hear about its payments' state changes and its incoming credits.
notify_subscriptions = Table(
    "notify_subscriptions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(35), ForeignKey("clients.id"), nullable=False, index=True),
    Column("url", String(500), nullable=False),
    Column("kinds", String(40), nullable=False),           # comma list of payment, credit
    Column("account", String(34), nullable=True),          # only events of this account; NULL: all
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# The transactional outbox: one row per event and subscription, written in the transaction that made the
# change (so it commits or vanishes with it), delivered afterwards by gateway/notify/delivery.py.
outbox_events = Table(
    "outbox_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(80), nullable=False),        # stable: what the ERP deduplicates by
    Column("subscription_id", Integer, ForeignKey("notify_subscriptions.id"), nullable=False),
    Column("client_id", String(35), nullable=False),
    Column("kind", String(10), nullable=False),            # payment | credit
    Column("payload", LargeBinary, nullable=False),        # the unsigned Notification, frozen at write time
    Column("created_at", UtcDateTime, nullable=False),     # the event's time
    Column("state", String(10), nullable=False),           # PENDING | DELIVERED | DEAD
    Column("attempts", Integer, nullable=False, default=0),
    Column("due_at", UtcDateTime, nullable=False),         # next attempt, or when a claim's lease runs out
    Column("lease", String(80), nullable=True),            # the claim of the delivery in flight
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("last_error", String(255), nullable=True),
    UniqueConstraint("event_id", "subscription_id", name="uq_outbox_event_subscription"),
    Index("ix_outbox_due", "state", "due_at"),
)

# --- issue 8: fund-flow rules (migration 0006) ---

# Rules per client ("" account: all its accounts) or per account; params are the rule's JSON parameters,
# validated by domain/rules.py when set. An account's row overrides the client-wide row of the same rule.
fund_rules = Table(
    "fund_rules", metadata,
    Column("client_id", String(35), ForeignKey("clients.id"), primary_key=True),
    Column("account", String(34), primary_key=True),
    Column("rule", String(40), primary_key=True),
    Column("params", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Registered counterparties of a client: the allow-list, and payees known before their first payment.
counterparties = Table(
    "counterparties", metadata,
    Column("client_id", String(35), ForeignKey("clients.id"), primary_key=True),
    Column("account", String(34), primary_key=True),
    Column("name", String(70), nullable=False),
    Column("name_key", String(420), nullable=False),       # domain.names.key(name)
    Column("added_at", UtcDateTime, nullable=False),
    Index("ix_counterparties_name", "client_id", "name_key"),
)

# Block lists (sanctions-style): one row per list, its entries below; client_id "" applies to every client.
# A list's loaded_at changes with every load: what the per-process caches of gateway/rule_facts.py check.
block_lists = Table(
    "block_lists", metadata,
    Column("client_id", String(35), primary_key=True),
    Column("list_name", String(40), primary_key=True),
    Column("entries", Integer, nullable=False),
    Column("loaded_at", UtcDateTime, nullable=False),
    Column("version", String(32), nullable=False),         # random per load: two loads never look alike
)

blocked_parties = Table(
    "blocked_parties", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("client_id", String(35), nullable=False),
    Column("list_name", String(40), nullable=False),
    Column("name", String(140), nullable=True),
    Column("name_key", String(420), nullable=True),        # domain.names.key(name)
    Column("account", String(34), nullable=True),          # domain.names.account_key(account)
    Column("added_at", UtcDateTime, nullable=False),
    Index("ix_blocked_client_list", "client_id", "list_name"),
)

# --- the configuration's version (migration 0010) ---

# One row, its version moved on by database triggers (migration 0010) whenever what a request reads as
# configuration changes: grants, approval policies, fund-flow rules, block lists, subscriptions, accounts'
# owners, names and currencies. Every request reads it in its first statement; gateway/config_cache.py keeps
# that configuration per version, so a change takes effect at once on every replica without being read anew
# by every request.
config_version = Table(
    "config_version", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),   # always 1
    Column("version", BigInteger, nullable=False),
)

# --- issue 26: the treasury console (migration 0014) ---

# Operators' security keys and passkeys (WebAuthn credentials), registered through a one-time enrolment link.
console_credentials = Table(
    "console_credentials", metadata,
    Column("id", String(255), primary_key=True),           # the credential id, base64url
    Column("client_id", String(35), nullable=False),
    Column("operator_id", String(35), nullable=False),
    Column("public_key", LargeBinary, nullable=False),     # COSE key, as the authenticator gave it
    Column("sign_count", BigInteger, nullable=False),
    Column("added_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    ForeignKeyConstraint(["client_id", "operator_id"], ["operators.client_id", "operators.id"]),
    Index("ix_console_credentials_operator", "client_id", "operator_id"),
)

# One-time enrolment links (`directlink operators enrol`): only the token's SHA-256 is kept.
console_enrolments = Table(
    "console_enrolments", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("client_id", String(35), nullable=False),
    Column("operator_id", String(35), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    ForeignKeyConstraint(["client_id", "operator_id"], ["operators.client_id", "operators.id"]),
)

# Every WebAuthn challenge handed out, used at most once (a replayed assertion finds it used). An approval's
# challenge is the SHA-256 of its statement (the decision, the PaymentIds and OrderDigests), kept here.
console_challenges = Table(
    "console_challenges", metadata,
    Column("id", String(64), primary_key=True),            # the handle the page sends back
    Column("purpose", String(8), nullable=False),          # enrol | signin | approve
    Column("client_id", String(35), nullable=False),
    Column("operator_id", String(35), nullable=False),
    Column("challenge", LargeBinary, nullable=False),
    Column("statement", Text, nullable=True),              # approve: what the challenge binds (JSON)
    Column("session_hash", String(64), nullable=True),     # approve: the session that asked for it
    Column("address", String(64), nullable=True),          # signin: where from (rate limits)
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Index("ix_console_challenges_operator", "client_id", "operator_id", "purpose", "created_at"),
)

# Server-side sessions: the cookie holds a random token, only its SHA-256 is kept.
console_sessions = Table(
    "console_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("client_id", String(35), nullable=False),
    Column("operator_id", String(35), nullable=False),
    Column("credential_id", String(255), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Index("ix_console_sessions_operator", "client_id", "operator_id"),
)

# Reconciliation in the console (gateway/console/reconciling.py): each run with its inputs and report, and the
# pairs a person decided (confirmed or matched by hand), which the next runs take out before matching.
recon_runs = Table(
    "recon_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(35), nullable=False),
    Column("operator_id", String(35), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("accounts", String(400), nullable=False),
    Column("statement_name", String(200), nullable=False),
    Column("items_name", String(200), nullable=False),
    Column("statement_data", LargeBinary, nullable=False),
    Column("items_data", LargeBinary, nullable=False),
    Column("summary", Text, nullable=False),       # JSON: counts and totals, for the list of runs
    Column("report", Text, nullable=False),        # JSON: the whole report the page draws
    Column("columns", Text),                       # the XLSX column mapping (TOML) the run read, if any
    Index("ix_recon_runs_client", "client_id", "id"),
)

recon_decisions = Table(
    "recon_decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(35), nullable=False),
    Column("line_key", String(120), nullable=False),   # the statement line: account#EntryId
    Column("item_key", String(120), nullable=False),   # the open item's id
    Column("kind", String(10), nullable=False),        # confirmed | manual
    Column("operator_id", String(35), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("run_id", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("client_id", "line_key", name="uq_recon_decisions_line"),
    UniqueConstraint("client_id", "item_key", name="uq_recon_decisions_item"),
)
