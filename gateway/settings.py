"""Gateway settings: read once from `directlink.toml` in the home directory, overridable by
DIRECTLINK_* environment variables, and passed explicitly into everything that needs them."""
from __future__ import annotations

import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, PositiveInt, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SETTINGS_FILE = "directlink.toml"
# Read from the environment only: a settings file is copied to every replica, kept in repositories and shown
# in support tickets.
SECRETS = ("gateway_key_passphrase", "gateway_pkcs11_pin")


class ClearingFaults(BaseModel):
    """Fault injection for the simulated clearing system, so every payment path runs for real."""

    fail_rate: float = 0.0        # refused by clearing: FAILED, funds released
    unknown_rate: float = 0.0     # clearing settles it but its answer is lost: UNKNOWN until asked
    lost_rate: float = 0.0        # the instruction never arrives: UNKNOWN, then sent again (same reference)
    return_rate: float = 0.0      # settles, then comes back: RETURNED with a reversing credit
    return_after_seconds: int = 0
    scripted: dict[str, str] = {}  # ClientRef pattern (fnmatch) -> SETTLED|FAILED|UNKNOWN|LOST|RETURNED
    seed: int | None = None


class Pkcs11Key(BaseModel):
    """The gateway's signing key in a PKCS#11 token (an HSM) instead of the PEM file `gateway_key`; the
    certificate stays the file `gateway_cert`, and the PIN is DIRECTLINK_GATEWAY_PKCS11_PIN."""

    model_config = ConfigDict(extra="forbid")

    module: Path                     # the token vendor's PKCS#11 library (a .so), e.g. SoftHSM2's
    token_label: str
    key_label: str = "directlink-gateway"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIRECTLINK_", extra="forbid")

    home: Path = Path(".")
    database_url: str = "sqlite:///directlink.db"      # relative SQLite paths are under `home`
    bank_name: str = "DirectLink Demo Bank"
    bank_bic: str = "DLNKCNSHXXX"                       # written into ISO 20022 and SWIFT statements
    # CNAPS codes starting with this prefix are accounts of this bank: those payments settle at once.
    own_cnaps_prefix: str = "999"
    timezone: str = "Asia/Shanghai"                     # the bank's business day
    sm2_distinguishing_id: str = "1234567812345678"     # SM2 signatures' signer identifier (GM/T 0009 default)
    freshness_seconds: int = 300                        # allowed |Created - now|
    replay_retention_hours: int = 48                    # MessageIds kept at least this long (>= 24 h)
    max_body_bytes: int = 10 * 1024 * 1024
    # Per client after verification; on PostgreSQL shared by all replicas (gateway/limits.py), on SQLite per
    # process. The operator limit, if set, applies to each operator of a client besides the client's.
    rate_limit_per_second: float = 100.0
    rate_limit_burst: int = 200
    operator_rate_limit_per_second: float | None = None
    operator_rate_limit_burst: int = 20
    max_concurrent_per_client: int = 32
    max_in_flight: int = 64                             # all requests in this process: past it, OVERLOADED
    # Threads that run requests in this process; the rest wait their turn. Unset: 4 on PostgreSQL, 40 on
    # SQLite (docs/deployment.md, "Threads").
    worker_threads: PositiveInt | None = None
    gateway_key: Path = Path("certs/gateway.key.pem")
    gateway_cert: Path = Path("certs/gateway.cert.pem")
    gateway_key_passphrase: SecretStr | None = None     # for an encrypted gateway_key; environment only
    gateway_key_pkcs11: Pkcs11Key | None = None         # set: the key is in this token, gateway_key unused
    gateway_pkcs11_pin: SecretStr | None = None         # the token's user PIN; environment only
    # After `directlink keys rotate`: the old certificate, still published while answers signed with it
    # may be in flight (rolling restarts) and until clients have the new one.
    gateway_previous_cert: Path = Path("certs/gateway.previous.cert.pem")
    # After `directlink keys rotate --prepare`: the next key and certificate, published ahead at
    # /v1/certificates so clients can trust both before `keys rotate --switch` makes them current.
    gateway_next_key: Path = Path("certs/gateway.next.key.pem")
    gateway_next_cert: Path = Path("certs/gateway.next.cert.pem")
    cert_warning_days: int = 30                         # warn this long before a certificate expires
    # Transport (docs/deployment.md): `serve` terminates TLS itself when tls_certificate is set (else plain
    # HTTP, for a reverse proxy in front), and with tls_client_ca requires a client certificate that CA issued.
    tls_certificate: Path | None = None
    tls_key: Path | None = None                         # omit when tls_certificate holds the key too
    tls_client_ca: Path | None = None
    directory_file: Path = Path("config/directory.toml")
    formats_dir: Path = Path("formats")                 # declared mappings, added by `directlink adapters add`
    clearing_interval_seconds: int = 5                  # how often the clearing job runs
    clearing_timeout_seconds: int = 60                  # PROCESSING with no answer this long: UNKNOWN
    clearing_faults: ClearingFaults = ClearingFaults()
    audit_retention_days: int = 5 * 365 + 2             # payment records are kept at least 5 years
    # --- issue 5: notifications ---
    notify_interval_seconds: int = 5                    # how often the delivery job runs
    notify_timeout_seconds: float = 10.0                # one POST to an ERP (connect, send, answer each)
    notify_concurrency: int = 8                         # POSTs in flight at once per process
    notify_max_attempts: int = 12                       # then the event becomes a dead letter ...
    notify_max_age_hours: float = 72.0                  # ... or when it is still undelivered this long
    notify_backoff_base_seconds: float = 5.0            # the first retry waits about this long, each next
    notify_backoff_max_seconds: float = 3600.0          # one twice as long up to this (jittered 50-100 %)
    notify_keep_delivered_days: int = 7                 # delivered events are kept this long, then removed
    # Deliver to loopback, private and link-local addresses too (an ERP on this machine or its LAN, demos):
    # off, so that a subscription cannot make the gateway reach into the bank's own network.
    notify_private_addresses: bool = False
    # Refuse subscriptions to http:// URLs when they are made or changed (notifications carry payment data).
    notify_https_only: bool = False
    # --- issue 26: the treasury console (docs/console.md) ---
    # The address operators open, e.g. "https://treasury.bank.example": WebAuthn binds each key to its host
    # name. Unset: the address the request came to (fine on one host; set it behind a proxy).
    console_origin: str | None = None
    console_idle_minutes: int = 15                      # a session unused this long ends
    console_signin_attempts: int = 10                   # sign-ins begun per operator (and per address) ...
    console_signin_window_minutes: int = 10             # ... within this window; past it, refused a while
    # --- issue 8: fund-flow rules ---
    # --- issue 7: performance ---

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        # Checked when read, not when the first business day is computed deep inside a running server.
        if name not in available_timezones():
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)")
        return name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def path(self, p: Path) -> Path:
        """A configured path, resolved against the home directory."""
        return p if p.is_absolute() else self.home / p

    @property
    def formats(self) -> Path:
        """The folder of declared mappings the registry adds to the installed adapters."""
        return self.path(self.formats_dir)

    @property
    def db_url(self) -> str:
        """The database URL with a relative SQLite path resolved against the home directory."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and not self.database_url.startswith(prefix + "/"):
            return prefix + str((self.home / self.database_url[len(prefix):]).resolve())
        return self.database_url

    @classmethod
    def load(cls, home: Path | str = ".", **overrides) -> Settings:
        """Read `home/directlink.toml` (if present); environment variables and overrides win."""
        home = Path(home).resolve()
        values: dict = {}
        file = home / SETTINGS_FILE
        if file.exists():
            try:
                values = tomllib.loads(file.read_text("utf-8")).get("gateway", {})
            except tomllib.TOMLDecodeError as err:
                raise SystemExit(f"{file} is not valid TOML ({err}): fix the file") from None
            if written := [key for key in SECRETS if key in values]:
                raise SystemExit(f"{file}: {', '.join(written)} may not be written in the settings file; "
                                 f"set {', '.join('DIRECTLINK_' + key.upper() for key in written)} in the "
                                 "environment instead")
        # Environment variables must beat the file: pass file values as defaults only.
        env = cls(home=home)  # type: ignore[call-arg]
        explicit = env.model_fields_set
        merged = {**values, **{k: getattr(env, k) for k in explicit}, **overrides, "home": home}
        return cls.model_validate(merged)
