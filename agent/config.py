"""The agent's TOML configuration (spec section 7): read once, checked whole, paths made absolute.

Every mistake is reported with the key that holds it before anything is sent, so that a typo in a cron
job's configuration fails loudly instead of silently pulling nothing."""
from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger

from adapters import registry
from domain.errors import UnsupportedFormat


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and the key."""


_REQUIRED = ("gateway", "gateway_certificate", "client", "operator", "key", "certificate", "outbox", "inbox",
             "state", "payment_format", "status_format", "statement_format", "accounts", "schedule")
_OPTIONAL = {   # key -> default
    "payment_formats": {},            # file-name pattern -> format, for outboxes holding several formats
    "watch_interval_seconds": 10,     # how often the outbox is scanned and due payments polled
    "poll_backoff_seconds": 30,       # first wait before asking about a payment again; doubles each time
    "poll_backoff_max_seconds": 3600,
    "resend_within_seconds": 240,     # resend the identical request only while the gateway still takes it
    "statement_page_size": 500,
    "timeout_seconds": 30,
    "tls_ca": "",                     # https: the CA bundle of the gateway's TLS certificate (default: system)
    "tls_certificate": "",            # mutual TLS: the client certificate the gateway requires ...
    "tls_key": "",                    # ... and its key (omit when the certificate file holds it)
    "max_body_bytes": 10 * 1024 * 1024,   # the gateway's max_body_bytes: a larger request fails here, unsent
    "receipts": "none",               # electronic receipts of the accounts into the inbox: none, xml, pdf or both
    "log_file": "",                   # JSON lines; empty: standard error
    "log_level": "INFO",
    "formats": "",                    # a folder of declared mappings (docs/declared-formats.md), for status_format
}


@dataclass(frozen=True)
class AgentConfig:
    source: Path
    gateway: str
    gateway_certificate: Path
    client: str
    operator: str
    key: Path
    certificate: Path
    outbox: Path
    inbox: Path
    state: Path
    payment_format: str
    status_format: str
    statement_format: str
    accounts: tuple[str, ...]
    schedule: str
    payment_formats: dict[str, str] = field(default_factory=dict)
    watch_interval_seconds: float = 10
    poll_backoff_seconds: float = 30
    poll_backoff_max_seconds: float = 3600
    resend_within_seconds: float = 240
    statement_page_size: int = 500
    timeout_seconds: float = 30
    max_body_bytes: int = 10 * 1024 * 1024
    log_file: Path | None = None
    log_level: str = "INFO"
    receipts: str = "none"
    tls_ca: Path | None = None
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    formats: Path | None = None

    @property
    def processed(self) -> Path:
        return self.outbox / "processed"

    @property
    def failed(self) -> Path:
        return self.outbox / "failed"

    def format_of(self, name: str) -> str:
        """The payment format of an outbox file: the first matching pattern, else `payment_format`."""
        for pattern, fmt in self.payment_formats.items():
            if fnmatch.fnmatch(name, pattern):
                return fmt
        return self.payment_format

    def cron(self) -> CronTrigger:
        return CronTrigger.from_crontab(self.schedule)


def load(path: Path) -> AgentConfig:
    """Read and check a configuration file; relative paths are relative to the file (spec section 7)."""
    path = path.resolve()
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err

    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {why}")

    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        raise ConfigError(f"{path}: missing key(s): {', '.join(missing)}")
    unknown = sorted(set(doc) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s): {', '.join(unknown)} (a typo?)")
    values = {**_OPTIONAL, **doc}
    for key in (*_REQUIRED, "log_file", "log_level", "tls_ca", "tls_certificate", "tls_key", "formats"):
        if key != "accounts" and not isinstance(values[key], str):
            raise bad(key, "must be a string")
    for key in _REQUIRED:
        if key != "accounts" and not values[key].strip():
            raise bad(key, "must not be empty")
    for key in ("watch_interval_seconds", "poll_backoff_seconds", "poll_backoff_max_seconds",
                "resend_within_seconds", "statement_page_size", "timeout_seconds"):
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad(key, "must be a number of at least 0")
    if isinstance(values["max_body_bytes"], bool) or not isinstance(values["max_body_bytes"], int) \
            or values["max_body_bytes"] < 1024:
        raise bad("max_body_bytes", "must be a whole number of bytes, at least 1024 (the gateway's max_body_bytes)")
    if not 1 <= values["statement_page_size"] <= 1000 or not isinstance(values["statement_page_size"], int):
        raise bad("statement_page_size", "must be a whole number from 1 to 1000 (the protocol's Limit)")
    if values["receipts"] not in ("none", "xml", "pdf", "both"):
        raise bad("receipts", 'must be "none", "xml", "pdf" or "both"')
    if values["log_level"].upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise bad("log_level", "must be DEBUG, INFO, WARNING or ERROR")
    accounts = values["accounts"]
    if not isinstance(accounts, list) or not all(isinstance(a, str) and a.strip() for a in accounts):
        raise bad("accounts", 'must be a list of account numbers as strings, e.g. ["6222000000000001"]')
    formats = values["payment_formats"]
    if not isinstance(formats, dict) or not all(isinstance(v, str) and v for v in formats.values()):
        raise bad("payment_formats", 'must be a table of file-name pattern = "format"')
    if not values["gateway"].startswith(("http://", "https://")):
        raise bad("gateway", "must be an http:// or https:// base URL")
    try:
        CronTrigger.from_crontab(values["schedule"])
    except ValueError as err:
        raise bad("schedule", f"not a crontab expression (minute hour day month weekday): {err}") from err
    declared = path.parent / values["formats"] if values["formats"] else None
    if declared is not None and not declared.is_dir():
        raise bad("formats", f"no such folder: {declared}")
    try:
        # Status reports are written here from the gateway's signed answers, so the format must be known
        # locally (installed, or declared in `formats`); payment and statement formats are the gateway's to judge.
        registry.status_writer(values["status_format"], declared)
    except UnsupportedFormat as err:
        raise bad("status_format", f"{err}; `directlink adapters` lists the status formats") from err

    base = path.parent
    resolved = {k: base / values[k] for k in ("gateway_certificate", "key", "certificate", "outbox", "inbox",
                                                "state")}
    for key in ("gateway_certificate", "key", "certificate"):
        if not resolved[key].is_file():
            raise bad(key, f"no such file: {resolved[key]}")
    tls = {k: base / values[k] if values[k] else None for k in ("tls_ca", "tls_certificate", "tls_key")}
    for key, file in tls.items():
        if file is not None and not file.is_file():
            raise bad(key, f"no such file: {file}")
    if tls["tls_key"] is not None and tls["tls_certificate"] is None:
        raise bad("tls_key", "given without tls_certificate")
    if tls["tls_certificate"] is not None and not values["gateway"].startswith("https://"):
        raise bad("tls_certificate", "a client certificate is for an https:// gateway")
    return AgentConfig(
        source=path, gateway=values["gateway"].rstrip("/"), client=values["client"],
        operator=values["operator"], payment_format=values["payment_format"],
        status_format=values["status_format"], statement_format=values["statement_format"],
        accounts=tuple(dict.fromkeys(a.strip() for a in accounts)), schedule=values["schedule"],
        payment_formats=dict(formats), watch_interval_seconds=values["watch_interval_seconds"],
        poll_backoff_seconds=values["poll_backoff_seconds"],
        poll_backoff_max_seconds=values["poll_backoff_max_seconds"],
        resend_within_seconds=values["resend_within_seconds"],
        statement_page_size=values["statement_page_size"], timeout_seconds=values["timeout_seconds"],
        max_body_bytes=values["max_body_bytes"],
        log_file=base / values["log_file"] if values["log_file"] else None,
        log_level=values["log_level"].upper(), formats=declared, receipts=values["receipts"],
        **tls, **resolved)
