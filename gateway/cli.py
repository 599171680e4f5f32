"""The `directlink` command (spec section 7): init, serve, send, demo, and directory management."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from cryptography import x509
from lxml import etree

from gateway.settings import Settings

app = typer.Typer(help="DirectLink bank-enterprise direct-link gateway.", no_args_is_help=True,
                  add_completion=False,
                  pretty_exceptions_enable=False)
config_app = typer.Typer(help="Clients, accounts, operators, certificates and grants.", no_args_is_help=True)
certs_app = typer.Typer(help="Operator certificates: add, list, revoke.", no_args_is_help=True)
keys_app = typer.Typer(help="The gateway's own signing key.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
clearing_app = typer.Typer(help="The clearing job (it also runs inside `serve`).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(certs_app, name="certs")
app.add_typer(clearing_app, name="clearing")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")

Home = Annotated[Path, typer.Option("--home", envvar="DIRECTLINK_HOME", help="the gateway's home directory")]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="where to create it")] = Path("."),
         key_type: Annotated[str, typer.Option(help="rsa (2048) or p256")] = "rsa",
         database_url: Annotated[Optional[str], typer.Option(help="default: SQLite in DIR")] = None) -> None:
    """Create configuration, gateway key, database and the demo client DEMO in DIR."""
    from gateway.setup import init_home
    try:
        init_home(directory, key_type, database_url)
    except (FileExistsError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"initialised {directory.resolve()}: run `directlink serve` there; "
               f"operator keys are in {directory / 'demo'}")


@app.command()
def serve(home: Home = Path("."), host: str = "127.0.0.1", port: int = 8080,
          log_level: Annotated[str, typer.Option(help="uvicorn's: info logs each request")] = "info") -> None:
    """Serve protocol v1 over HTTP from the gateway home (the current directory by default)."""
    import uvicorn

    from gateway.app import build_gateway, create_app
    uvicorn.run(create_app(build_gateway(Settings.load(home))), host=host, port=port, log_level=log_level)


@app.command()
def send(file: Annotated[Path, typer.Argument(help="a Request XML; empty MessageId/Created are filled in")],
         operator: Annotated[str, typer.Option(help="the operator whose key signs")],
         key: Annotated[Path, typer.Option(help="the operator's private key (PEM)")],
         cert: Annotated[Optional[Path], typer.Option(help="default: KEY with .cert.pem")] = None,
         client: Annotated[Optional[str], typer.Option(help="default: Header/Client of FILE")] = None,
         url: str = "http://127.0.0.1:8080",
         gateway_cert: Annotated[Optional[Path], typer.Option(help="pinned gateway certificate")] = None) -> None:
    """Sign FILE, post it, verify the answer's signature and print the answer."""
    import httpx

    from gateway.protocol import client as dl
    from gateway.protocol.xmlsafe import q, text
    cert = cert or Path(str(key).replace(".key.pem", ".cert.pem"))
    root = etree.fromstring(file.read_bytes(), etree.XMLParser(resolve_entities=False, no_network=True))
    client = client or text(root.find(f"{q('Header')}/{q('Client')}"))
    if not client:
        _fail("no client: give --client or fill Header/Client in the file")
    if gateway_cert is None and Path("certs/gateway.cert.pem").exists():
        gateway_cert = Path("certs/gateway.cert.pem")
    if gateway_cert is not None:
        pinned = gateway_cert.read_bytes()
    else:
        typer.echo("warning: no --gateway-cert; trusting the certificate the gateway serves", err=True)
        pinned = httpx.get(f"{url.rstrip('/')}/v1/certificate").content
    c = dl.Client(url, client, operator, key.read_bytes(), cert.read_bytes(), pinned)
    answer = c.post(c.sign_document(root))
    pretty = etree.tostring(etree.fromstring(answer.raw), pretty_print=True, encoding="unicode")
    typer.echo(pretty)
    typer.echo(f"HTTP {answer.status} {answer.code}: {answer.detail} (signature verified)", err=True)
    raise typer.Exit(0 if answer.code == "OK" else 1)


@app.command("adapters")
def list_adapters() -> None:
    """List the ERP adapters and the formats each reads and writes (fails loudly on a broken one)."""
    from adapters.registry import AdapterError, adapters
    try:
        found = adapters()
    except AdapterError as err:
        _fail(str(err))
    for a in found.values():
        typer.echo(f"{a.name}: {a.description}")
        for kind, formats in (("reads payments", a.payment_readers), ("writes statements", a.statement_writers),
                              ("reads statements", a.statement_readers), ("writes statuses", a.status_writers)):
            if formats:
                typer.echo(f"  {kind}: {', '.join(formats)}")
        typer.echo(f"  limits: {a.limits.max_transactions} transactions a file, amounts in {a.limits.amount_unit} "
                   f"units, encodings {', '.join(a.limits.encodings)}")
    if not found:
        typer.echo("no adapters installed")


@app.command()
def demo() -> None:
    """Run a readable end-to-end story on the embedded default, with no other set-up."""
    from gateway.demo import run
    raise typer.Exit(run())


def _engine(home: Path):
    from gateway.storage.engine import make_engine, migrate
    settings = Settings.load(home)
    engine = make_engine(settings.db_url)
    migrate(engine)
    return settings, engine


@config_app.command("apply")
def config_apply(file: Path, home: Home = Path(".")) -> None:
    """Apply a directory TOML file (clients, accounts, operators, certificates, grants)."""
    from gateway.setup import apply_directory
    counts = apply_directory(Settings.load(home), file)
    typer.echo(", ".join(f"{v} {k}" for k, v in counts.items()))


@config_app.command("grant")
def config_grant(client: str, operator: str, account: str,
                 permissions: Annotated[str, typer.Option(help="comma list of query,pay,approve; empty revokes")],
                 single_limit: Optional[str] = None, daily_limit: Optional[str] = None,
                 approve_limit: Optional[str] = None, home: Home = Path(".")) -> None:
    """Set an operator's grants and limits on one account."""
    from gateway import directory
    _, engine = _engine(home)
    rights = {p.strip() for p in permissions.split(",") if p.strip()}
    try:
        with engine.begin() as conn:
            directory.set_grant(conn, client, operator, account, rights, single_limit, daily_limit, _now(),
                                approve_limit)
    except Exception as err:  # noqa: BLE001 - shown to the operator, nothing was changed
        _fail(str(err))
    typer.echo(f"{client}/{operator} on {account}: {sorted(rights) or 'no grants'}")


@config_app.command("accounts")
def config_accounts(home: Home = Path(".")) -> None:
    """List accounts with booked, held and available balances."""
    from sqlalchemy import select

    from domain.money import Money
    from gateway.storage.tables import accounts
    _, engine = _engine(home)
    with engine.connect() as conn:
        for r in conn.execute(select(accounts).order_by(accounts.c.client_id, accounts.c.number)):
            fmt = lambda minor: Money.from_minor(minor, r.currency).text()  # noqa: E731
            typer.echo(f"{r.client_id or '(bank)':<8} {r.number:<20} {r.currency} booked {fmt(r.booked):>16} "
                       f"held {fmt(r.held):>14} available {fmt(r.booked - r.held):>16}  {r.name}")


@certs_app.command("add")
def certs_add(client: str, operator: str, pem: Path, home: Home = Path(".")) -> None:
    """Register (pin) a certificate for an operator."""
    from gateway import directory
    _, engine = _engine(home)
    with engine.begin() as conn:
        fp = directory.register_certificate(conn, client, operator, pem.read_bytes(), _now())
    typer.echo(fp)


@certs_app.command("list")
def certs_list(home: Home = Path(".")) -> None:
    """List registered certificates with validity and revocation."""
    from sqlalchemy import select

    from gateway.storage.tables import certificates
    _, engine = _engine(home)
    with engine.connect() as conn:
        for r in conn.execute(select(certificates).order_by(certificates.c.client_id, certificates.c.operator_id)):
            state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
            typer.echo(f"{r.client_id}/{r.operator_id:<10} {r.fingerprint}  {r.not_before:%Y-%m-%d} .. "
                       f"{r.not_after:%Y-%m-%d}  {state}")


@certs_app.command("revoke")
def certs_revoke(fingerprint: str, home: Home = Path(".")) -> None:
    """Revoke a certificate at once (on every replica sharing the database)."""
    from gateway import directory
    _, engine = _engine(home)
    with engine.begin() as conn:
        if not directory.revoke_certificate(conn, fingerprint.lower(), _now()):
            _fail(f"no active certificate {fingerprint}")
    typer.echo(f"revoked {fingerprint}")


@db_app.command("upgrade")
def db_upgrade(home: Home = Path(".")) -> None:
    """Migrate the database to the newest schema (serve does this too, under a lock; run it once first
    when rolling out a new version to several replicas)."""
    _engine(home)
    typer.echo("database is at the newest schema")


@keys_app.command("rotate")
def keys_rotate(home: Home = Path("."),
                key_type: Annotated[str, typer.Option(help="rsa (2048) or p256")] = "rsa") -> None:
    """Make a new gateway key and certificate; the old certificate stays published for the overlap."""
    from gateway.rotation import rotate_gateway_key
    path = rotate_gateway_key(Settings.load(home), key_type)
    typer.echo(f"new gateway certificate {path}; restart each replica, then distribute it to clients")


@clearing_app.command("run")
def clearing_run(home: Home = Path(".")) -> None:
    """Run one clearing pass now and print what happened."""
    from gateway.clearing import Clearing
    settings, engine = _engine(home)
    done = Clearing(engine, settings, _now).run_once()
    typer.echo(", ".join(f"{n} {what}" for what, n in sorted(done.items())) or "nothing due")


@audit_app.command("verify")
def audit_verify(home: Home = Path("."),
                 anchor: Annotated[Optional[Path], typer.Option(help="an anchor file from `audit anchor`")] = None,
                 ) -> None:
    """Check every audit chain (and an anchor, if given); exit 1 and name what was edited, removed or reordered."""
    from gateway import audit
    settings, engine = _engine(home)
    trusted = [x509.load_pem_x509_certificate(settings.path(settings.gateway_cert).read_bytes())]
    if settings.path(settings.gateway_previous_cert).exists():
        trusted.append(x509.load_pem_x509_certificate(settings.path(settings.gateway_previous_cert).read_bytes()))
    with engine.connect() as conn:
        checked, findings = audit.verify(conn)
        if anchor is not None:
            try:
                findings += audit.check_anchor(conn, audit.read_anchor(anchor.read_bytes(), trusted))
            except (ValueError, KeyError) as err:
                _fail(f"anchor {anchor}: {err}")
    for f in findings:
        typer.echo(f"BROKEN chain {f.chain} record {f.seq}: {f.problem}")
    typer.echo(f"{checked} records checked: " + ("intact" if not findings else f"{len(findings)} problem(s)"))
    raise typer.Exit(1 if findings else 0)


@audit_app.command("anchor")
def audit_anchor(out: Annotated[Path, typer.Option(help="where to write it (keep it outside the database)")],
                 home: Home = Path(".")) -> None:
    """Write the chain heads, signed with the gateway key: later `audit verify --anchor` catches any
    rewrite of what came before, even one that recomputed every hash."""
    from gateway import audit
    from gateway.app import build_gateway
    settings, _ = _engine(home)
    gateway = build_gateway(settings)
    with gateway.engine.connect() as conn:
        anchored = audit.heads(conn)
    out.write_bytes(audit.sign_anchor(gateway.signer.key, gateway.signer.cert_pem, anchored, _now()))
    typer.echo(f"anchored {len(anchored)} chain(s) in {out}")


@config_app.command("policy")
def config_policy(client: str, threshold: str, approvals: int,
                  account: Annotated[str, typer.Option(help="default: every account of the client")] = "",
                  currency: Annotated[str, typer.Option(help="for client-wide tiers")] = "CNY",
                  home: Home = Path(".")) -> None:
    """Payments at or above THRESHOLD need APPROVALS distinct approvers (0 removes the tier)."""
    from gateway import directory
    _, engine = _engine(home)
    try:
        with engine.begin() as conn:
            directory.set_approval_policy(conn, client, account, threshold, approvals, _now(), currency)
    except Exception as err:  # noqa: BLE001 - shown to the operator, nothing was changed
        _fail(str(err))
    typer.echo(f"{client} {account or '(all accounts)'} >= {threshold}: {approvals} approval(s)")


# --- issue 5: enterprise-side agent (owned by agent/) ---

@app.command("agent")
def agent_command(
        config: Annotated[Path, typer.Option("--config", help="the agent's TOML file (docs/agent.md)")],
        once: Annotated[bool, typer.Option("--once", help="one full pass, then exit (for cron)")] = False) -> None:
    """The enterprise-side agent: submits outbox files, polls payments, pulls statements into the inbox."""
    from agent.runner import main as run_agent
    raise typer.Exit(run_agent(config, once))


# --- issue 5: reconciliation (owned by reconcile/) ---

@app.command("reconcile")
def reconcile_command(
        statement: Annotated[list[Path], typer.Option(help="statement file (repeat for consecutive files)")],
        open_items: Annotated[Path, typer.Option(help="the ERP's open items, .csv or .json")],
        format: Annotated[Optional[str], typer.Option(help="statement format; default: recognised")] = None,
        out: Annotated[Optional[Path], typer.Option(help="report file: .json, .csv or .html (default: JSON "
                                                         "on standard output)")] = None,
        home: Annotated[Optional[Path], typer.Option(help="also match the payments of this gateway home")] = None,
        date_window: Annotated[int, typer.Option(help="days between value and due date")] = 5,
        fee_tolerance: Annotated[str, typer.Option(help="largest difference the text rule accepts")] = "50",
        similarity: Annotated[float, typer.Option(help="how alike a misspelt reference must be, 0-1")] = 0.85,
        max_group: Annotated[int, typer.Option(help="most items one entry may pay (and entries one item)")] = 5,
        encoding: Annotated[str, typer.Option(help="of a CSV open-items file, e.g. gbk")] = "utf-8",
        fail_on_unmatched: Annotated[bool, typer.Option(help="exit 1 if anything is left unmatched")] = False,
) -> None:
    """Match a statement against the ERP's open items (and the gateway's payments); docs/reconciliation.md."""
    from decimal import Decimal, InvalidOperation

    from sqlalchemy.exc import SQLAlchemyError

    from reconcile.model import Tolerances
    from reconcile.open_items import OpenItemsInvalid
    from reconcile.render import FORMATS, render
    from reconcile.report import build_report
    from reconcile.statement_files import StatementFileInvalid
    kind = "json" if out is None else {".json": "json", ".csv": "csv", ".html": "html", ".htm": "html"}.get(
        out.suffix.lower())
    if kind not in FORMATS:
        _fail(f"--out {out}: the report format follows the suffix: .json, .csv or .html")
    try:
        fee = Decimal(fee_tolerance)
        tolerances = Tolerances(date_window, fee, similarity, max_group)
    except (InvalidOperation, ValueError) as err:
        _fail(f"tolerances: {err}")
    try:
        report = build_report(statement, open_items, fmt=format, tolerances=tolerances, home=home,
                              encoding=encoding)
    except (StatementFileInvalid, OpenItemsInvalid, FileNotFoundError) as err:
        _fail(str(err))
    except SQLAlchemyError as err:
        _fail(f"--home {home}: the gateway database cannot be read: {err.__class__.__name__}")
    data = render(report, kind)
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        out.write_bytes(data)
    unmatched = 0
    for section in report.sections:
        r = section.result
        rules = ", ".join(f"{rule} {n}" for rule, n in r.counts().items()) or "none"
        typer.echo(f"{section.title}: {len(r.matches)} matches ({rules}); unmatched {len(r.unmatched_lines)} "
                   f"statement entries, {len(r.unmatched_items)} items", err=True)
        unmatched += len(r.unmatched_lines) + len(r.unmatched_items)
    raise typer.Exit(1 if fail_on_unmatched and unmatched else 0)


# --- issue 5: notifications and sandbox ---

notify_app = typer.Typer(help="Notifications to ERPs: subscriptions, delivery, dead letters (docs/notifications.md).",
                         no_args_is_help=True)
sandbox_app = typer.Typer(help="Sandbox bookings for demos and tests.", no_args_is_help=True)
app.add_typer(notify_app, name="notify")
app.add_typer(sandbox_app, name="sandbox")


@notify_app.command("subscribe")
def notify_subscribe(client: str, url: str,
                     kinds: Annotated[str, typer.Option(help="comma list of payment,credit")] = "payment,credit",
                     account: Annotated[Optional[str], typer.Option(help="only this account's events")] = None,
                     home: Home = Path(".")) -> None:
    """Send CLIENT's payment state changes and/or incoming credits to URL (signed XML by POST)."""
    from gateway.notify import subscriptions
    _, engine = _engine(home)
    try:
        with engine.begin() as conn:
            sub = subscriptions.subscribe(conn, client, url, kinds, account, _now())
    except subscriptions.SubscriptionError as err:
        _fail(str(err))
    typer.echo(f"subscribed {sub.describe()}")


@notify_app.command("update")
def notify_update(subscription: int, url: Optional[str] = None,
                  kinds: Annotated[Optional[str], typer.Option(help="comma list of payment,credit")] = None,
                  account: Annotated[Optional[str], typer.Option(help='only this account ("" for all)')] = None,
                  active: Annotated[Optional[bool], typer.Option("--active/--inactive")] = None,
                  home: Home = Path(".")) -> None:
    """Change a subscription's URL, kinds, account filter, or switch it off and on."""
    from gateway.notify import subscriptions
    _, engine = _engine(home)
    changes = {"url": url, "kinds": kinds, "active": active, **({"account": account} if account is not None else {})}
    try:
        with engine.begin() as conn:
            sub = subscriptions.change(conn, subscription, _now(), **changes)
    except subscriptions.SubscriptionError as err:
        _fail(str(err))
    typer.echo(f"changed {sub.describe()}")


@notify_app.command("list")
def notify_list(client: Optional[str] = None, home: Home = Path(".")) -> None:
    """List subscriptions."""
    from gateway.notify import subscriptions
    _, engine = _engine(home)
    with engine.connect() as conn:
        for sub in subscriptions.listing(conn, client):
            typer.echo(sub.describe())


@notify_app.command("run")
def notify_run(home: Home = Path(".")) -> None:
    """Deliver every notification that is due now (the same job `serve` runs) and print what happened."""
    from gateway.app import build_gateway
    from gateway.notify.delivery import Delivery
    gateway = build_gateway(Settings.load(home))
    done = Delivery(gateway.engine, gateway.settings, gateway.signer).run_once()
    typer.echo(", ".join(f"{n} {what}" for what, n in sorted(done.items())) or "nothing due")


@notify_app.command("dead")
def notify_dead(client: Optional[str] = None, home: Home = Path(".")) -> None:
    """List dead letters: notifications given up on after all retries (replay them with `notify replay`)."""
    from gateway.notify.delivery import dead_letters
    _, engine = _engine(home)
    with engine.connect() as conn:
        rows = dead_letters(conn, client)
    for r in rows:
        typer.echo(f"#{r.id} {r.client_id} {r.event_id} to subscription #{r.subscription_id}, {r.attempts} "
                   f"attempt(s), since {r.created_at:%Y-%m-%d %H:%M:%S}Z: {r.last_error}")
    typer.echo(f"{len(rows)} dead letter(s)")


@notify_app.command("replay")
def notify_replay(ids: Annotated[Optional[list[int]], typer.Argument(help="dead letter ids")] = None,
                  all_: Annotated[bool, typer.Option("--all", help="every dead letter")] = False,
                  home: Home = Path(".")) -> None:
    """Queue dead letters for delivery again (same EventId: the ERP deduplicates)."""
    from gateway.notify.delivery import replay
    if bool(ids) == all_:
        _fail("give dead letter ids or --all")
    _, engine = _engine(home)
    try:
        with engine.begin() as conn:
            done = replay(conn, None if all_ else ids, _now())
    except ValueError as err:
        _fail(str(err))
    typer.echo(f"queued {len(done)} dead letter(s) again: run `directlink notify run` or wait for `serve`")


@sandbox_app.command("credit")
def sandbox_credit(account: str, amount: str,
                   payer_name: Annotated[str, typer.Option(help="who paid")],
                   payer_account: Annotated[str, typer.Option(help="the payer's account at their bank")],
                   payer_bank: Annotated[Optional[str], typer.Option(help="CNAPS code or BIC")] = None,
                   reference: Annotated[Optional[str], typer.Option(help="remittance text (the narrative)")] = None,
                   end_to_end_id: Annotated[Optional[str], typer.Option(help="the payer's EndToEndId")] = None,
                   currency: Annotated[Optional[str], typer.Option(help="default: the account's")] = None,
                   value_date: Annotated[Optional[dt.datetime], typer.Option(formats=["%Y-%m-%d"])] = None,
                   home: Home = Path(".")) -> None:
    """Book an incoming transfer from another bank into ACCOUNT (it shows on statements and notifies)."""
    from domain.errors import PaymentRejected
    from gateway import sandbox
    settings, engine = _engine(home)
    try:
        with engine.begin() as conn:
            done = sandbox.credit(conn, account=account, amount=amount, currency=currency, payer_name=payer_name,
                                  payer_account=payer_account, payer_bank_code=payer_bank, reference=reference,
                                  end_to_end_id=end_to_end_id, value_date=value_date and value_date.date(),
                                  now=_now(), zone=settings.zone, own_cnaps_prefix=settings.own_cnaps_prefix)
    except PaymentRejected as err:
        _fail(f"{err.reason.value}: {err.detail} (nothing was booked)")
    typer.echo(f"credited {done.amount.text()} {done.amount.currency} to {done.account} ({done.client_id}): "
               f"EntryId {done.entry_id:012d}, BankRef {done.bank_ref}, booked balance "
               f"{done.amount.from_minor(done.booked, done.amount.currency).text()}")

# --- issue 8: fund-flow rules, cash position, dry run ---
rules_app = typer.Typer(help="Fund-flow rules that every payment passes before acceptance.", no_args_is_help=True)
payee_app = typer.Typer(help="Registered counterparties (the allow-list; known payees).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
rules_app.add_typer(payee_app, name="payee")


def _rule_params(pairs: list[str]) -> dict:
    """KEY=VALUE pairs; a value starting with { or [ is JSON (windows={"URGENT":"09:00-16:00"})."""
    import json
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            _fail(f"--param {pair!r} is not KEY=VALUE")
        try:
            params[name] = json.loads(value) if value[:1] in "{[" else value
        except ValueError as err:
            _fail(f"--param {name}: {err}")
    return params


@rules_app.command("set")
def rules_set(client: str, rule: Annotated[str, typer.Argument(help="e.g. duplicate, new_payee, velocity")],
              param: Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE, repeatable")] = None,
              account: Annotated[str, typer.Option(help="default: every account of the client")] = "",
              home: Home = Path(".")) -> None:
    """Declare a rule (replacing its earlier parameters); see docs/rules.md for each rule's parameters."""
    from gateway import rulebook
    _, engine = _engine(home)
    try:
        with engine.begin() as conn:
            parsed = rulebook.set_rule(conn, client, account, rule, _rule_params(param or []), _now())
    except ValueError as err:
        _fail(str(err))
    typer.echo(f"{client} {account or '(all accounts)'} {rule}: {parsed.model_dump_json()}")


@rules_app.command("remove")
def rules_remove(client: str, rule: str, account: str = "", home: Home = Path(".")) -> None:
    """Remove a rule declared for the client (or for one account with --account)."""
    from gateway import rulebook
    _, engine = _engine(home)
    with engine.begin() as conn:
        if not rulebook.remove_rule(conn, client, account, rule, _now()):
            _fail(f"no rule {rule} for {client} {account or '(all accounts)'}")
    typer.echo(f"removed {rule} for {client} {account or '(all accounts)'}")


@rules_app.command("list")
def rules_list(client: str, home: Home = Path(".")) -> None:
    """The client's rules with their parameters."""
    import json

    from gateway import rulebook
    _, engine = _engine(home)
    with engine.connect() as conn:
        for account, rule, params in rulebook.list_rules(conn, client):
            typer.echo(f"{account or '*':<20} {rule:<16} {json.dumps(params, ensure_ascii=False)}")


@rules_app.command("block-list")
def rules_block_list(file: Annotated[Path, typer.Argument(help="CSV (name,account columns) or JSON")],
                     name: Annotated[str, typer.Option(help="the list's name; loading replaces it")],
                     client: Annotated[str, typer.Option(help="default: every client")] = "",
                     home: Home = Path(".")) -> None:
    """Load (replace) a block list: payees matching a name (Chinese or pinyin) or an account are refused."""
    from gateway import rulebook
    _, engine = _engine(home)
    try:
        with engine.begin() as conn:
            count = rulebook.load_block_list(conn, file, name, client, _now())
    except (OSError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"block list {name}: {count} entries for {client or 'all clients'}")


@payee_app.command("add")
def payee_add(client: str, name: str, account: str, home: Home = Path(".")) -> None:
    """Register a counterparty of CLIENT."""
    from gateway import rulebook
    _, engine = _engine(home)
    try:
        with engine.begin() as conn:
            rulebook.add_counterparty(conn, client, name, account, _now())
    except ValueError as err:
        _fail(str(err))
    typer.echo(f"{client}: counterparty {name} {account}")


@payee_app.command("remove")
def payee_remove(client: str, account: str, home: Home = Path(".")) -> None:
    from gateway import rulebook
    _, engine = _engine(home)
    with engine.begin() as conn:
        if not rulebook.remove_counterparty(conn, client, account, _now()):
            _fail(f"{account} is not a counterparty of {client}")
    typer.echo(f"{client}: removed counterparty {account}")


def main() -> None:
    app(prog_name="directlink")


if __name__ == "__main__":
    sys.exit(main())

