"""Shared fixtures: one migrated test database per run, emptied before each test.

The backend comes from ``TEST_DATABASE_URL`` (scripts/test runs the suite once
with a SQLite file and once with PostgreSQL). Real Redis comes from
``REDIS_URL``. A missing server skips its tests with a visible reason, except
under ``CI=true``, where it fails them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid

import peewee
import pytest

from db import database, migrate, plz
from db.models import ALL_MODELS, PlzCentroid
from psymatch import settings

IN_CI = os.environ.get("CI", "").lower() == "true"

# Production is the default (SECURITY.md); the suite runs the laptop demo's way, in demo
# mode with the public demo secrets, on a local test database. Set in the environment
# before settings are first loaded, so that the CLI, gunicorn and worker subprocesses the
# tests start inherit it. Production-mode tests set PSYMATCH_MODE=production themselves.
os.environ["PSYMATCH_MODE"] = "demo"

# Actor modules bind to the broker that is installed when they are imported.
# A StubBroker is installed before any of them is, and every test then gets a
# fresh one (``stub_broker``), as Dramatiq's own test-suite does.
import dramatiq  # noqa: E402

from workers import broker as _broker  # noqa: E402

_broker.setup(_broker.build_stub_broker())


def missing(what: str):
    """Skip (locally) or fail (in CI) when a server a test needs is not there."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but not reachable", pytrace=False)
    pytest.skip(f"{what} not reachable")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def backend(database_url) -> str:
    return "postgres" if database_url.startswith("postgres") else "sqlite"


def _reset_schema(url: str) -> None:
    """Drop everything in the test database (it is a throwaway by contract)."""
    database.init(url)
    if database.is_postgres():
        database.db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
        database.db.execute_sql("CREATE SCHEMA public")
    else:
        for table in database.db.get_tables():
            database.db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')


@pytest.fixture(scope="session")
def migrated(database_url, tmp_path_factory):
    """The test database at head, with PLZ centroids loaded; settings point at it."""
    var = tmp_path_factory.mktemp("var")
    settings.override(
        DATABASE_URL=database_url,
        VAR_DIR=str(var),
        PGEOCODE_DATA_DIR=str(var / "pgeocode"),
    )
    try:
        _reset_schema(database_url)
    except peewee.OperationalError as exc:
        missing(f"database {database_url} ({exc})")
    migrate.upgrade(report=lambda _: None)
    plz.ensure_loaded()
    yield database_url
    database.db.close()


def empty_tables() -> None:
    """Delete every row except the PLZ reference data, fast, on either backend."""
    tables = [m._meta.table_name for m in ALL_MODELS if m is not PlzCentroid]
    if database.is_postgres():
        quoted = ", ".join(f'"{t}"' for t in tables)
        database.db.execute_sql(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")
    else:
        with database.db.atomic():
            database.db.execute_sql("PRAGMA defer_foreign_keys = ON")
            for table in tables:
                database.db.execute_sql(f'DELETE FROM "{table}"')


@pytest.fixture
def clean_db(migrated):
    """An empty migrated database (PLZ centroids kept) bound to the models."""
    database.init(migrated)
    empty_tables()
    yield database.db
    if not database.db.is_closed():
        database.db.close()


@pytest.fixture
def scratch_database_url(database_url, backend, tmp_path):
    """A separate, empty database for tests that migrate up and down themselves.

    SQLite: a new file. PostgreSQL: a fresh schema in the test database,
    selected through the connection's search_path.
    """
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    schema = f"scratch_{uuid.uuid4().hex[:10]}"
    admin = database.database_from_url(database_url)
    admin.execute_sql(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in database_url else "?"
    yield f"{database_url}{separator}options=-csearch_path%3D{schema}"
    admin.execute_sql(f'DROP SCHEMA "{schema}" CASCADE')
    database.release(admin)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        missing(f"Redis at {url} ({exc})")
    return url


@pytest.fixture
def cli_env(migrated, tmp_path) -> dict[str, str]:
    """Environment for running the ``psymatch`` CLI as a subprocess against the test DB."""
    env = dict(os.environ)
    s = settings.get()
    env.update(
        DATABASE_URL=migrated,
        VAR_DIR=s.VAR_DIR,
        PGEOCODE_DATA_DIR=s.PGEOCODE_DATA_DIR,
    )
    return env


def run_python(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``env`` from the project root, its output captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=settings.PROJECT_ROOT,
    )


def production_secrets() -> dict[str, str]:
    """Production mode with freshly generated secrets that pass every check."""
    from cryptography.fernet import Fernet

    return {
        "PSYMATCH_MODE": "production",
        "SIGNING_KEY": secrets.token_hex(32),
        "MAILGUN_SIGNING_KEY": secrets.token_hex(32),
        "POSTMARK_WEBHOOK_PASSWORD": secrets.token_urlsafe(32),
        "RAW_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CONSOLE_TOKEN": secrets.token_urlsafe(32),
    }


def run_cli(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m cli.main ARGS`` in ``env``, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(autouse=True)
def stub_broker():
    """A fresh in-memory broker with psymatch's middleware for every test.

    Every actor declared so far is moved onto it, so messages a test leaves
    behind (delayed retries, say) can never reach the next test's worker.
    """
    previous = dramatiq.get_broker()
    fresh = _broker.setup(_broker.build_stub_broker())
    for name in previous.get_declared_actors():
        actor = previous.get_actor(name)
        actor.broker = fresh
        fresh.declare_actor(actor)
    yield fresh
    fresh.flush_all()
    fresh.close()


@pytest.fixture
def stub_worker(stub_broker):
    """A worker on the test's broker; stopped when the test ends."""
    worker = dramatiq.Worker(stub_broker, worker_timeout=100, worker_threads=2)
    worker.start()
    yield worker
    worker.stop()
