"""Database selection at run time.

Models bind to ``db``, a ``DatabaseProxy``; ``init()`` points it at the
database named by ``DATABASE_URL`` (SQLite file or PostgreSQL). Tests and
tools call ``init(url)`` with their own URL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import peewee
from playhouse.pool import PooledPostgresqlDatabase

db = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "foreign_keys": 1,
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 15000,
    "cache_size": -64000,
}
# The sqlite3 module's cache of prepared statements per connection (the default keeps 128).
# A busy worker runs some 270 different statements, and every savepoint peewee opens has a
# name of its own, so its SAVEPOINT and RELEASE take two places in the cache for good: with
# 128, statements in use were pushed out and prepared anew (in a simulated month, 2,100
# prepares more than with 512).
SQLITE_CACHED_STATEMENTS = 512


class DatabaseURLError(ValueError):
    """A DATABASE_URL psymatch cannot use."""


class RecentlyUsedPool(PooledPostgresqlDatabase):
    """The connection pool, without a liveness round trip for a connection that was
    checked in a moment ago.

    peewee's pool sends ``SELECT 1`` on every check-out to find connections the server
    closed. On the webhook's hot path that is one round trip of three; a connection
    returned less than ``TRUSTED_FOR_S`` ago is handed out without it. If the server
    went away in that second, the caller's query fails like any query would during an
    outage (the webhook answers 503 and the provider delivers again), and the broken
    connection is discarded on check-in.
    """

    TRUSTED_FOR_S = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._checked_in: dict[int, float] = {}

    def _is_closed(self, conn):
        if conn.closed:
            self._checked_in.pop(id(conn), None)
            return True
        returned = self._checked_in.get(id(conn))
        if (
            returned is not None
            and time.monotonic() - returned < self.TRUSTED_FOR_S
            and self._adapter.txn_status(conn) == self._adapter.txn_idle
        ):
            return False
        return super()._is_closed(conn)

    def _close(self, conn, close_conn=False):
        super()._close(conn, close_conn)
        if close_conn or conn.closed:
            self._checked_in.pop(id(conn), None)
        else:
            self._checked_in[id(conn)] = time.monotonic()


def database_from_url(url: str) -> peewee.Database:
    """Create (but do not connect) the database a URL names.

    ``sqlite:///relative/or/absolute/path.db`` (``sqlite:///:memory:`` too) and
    ``postgresql://user:password@host:port/name``.
    """
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme == "sqlite":
        path = unquote(url.split("://", 1)[1])
        if path.startswith("/") and not path.startswith("//"):
            path = path[1:] if path[1:].startswith(":memory:") else path
        path = path.lstrip("/") if path.startswith("/:memory:") else path
        if path != ":memory:":
            if not path.startswith("/"):
                path = str(Path(path))
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return peewee.SqliteDatabase(
            path, pragmas=SQLITE_PRAGMAS, timeout=15, cached_statements=SQLITE_CACHED_STATEMENTS
        )
    if scheme in ("postgres", "postgresql"):
        if not parsed.path or parsed.path == "/":
            raise DatabaseURLError(f"DATABASE_URL {url!r} names no database")
        options = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        # A pool: web requests and worker messages would otherwise pay a new TCP
        # connection and authentication (~7 ms) each time. ``close()`` returns a
        # connection to the pool; idle ones are recycled after ``stale_timeout``.
        return RecentlyUsedPool(
            unquote(parsed.path[1:]),
            user=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            host=parsed.hostname or None,
            port=parsed.port or None,
            connect_timeout=int(options.pop("connect_timeout", 5)),
            max_connections=int(options.pop("max_connections", 20)),
            stale_timeout=int(options.pop("stale_timeout", 300)),
            **options,
        )
    raise DatabaseURLError(
        f"DATABASE_URL {url!r}: unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)"
    )


def init(url: str | None = None) -> peewee.Database:
    """Bind the models to the database at ``url`` (default: settings' DATABASE_URL)."""
    if url is None:
        from psymatch import settings

        url = settings.get().DATABASE_URL
    release(db.obj)
    database = database_from_url(url)
    db.initialize(database)
    return database


def release(database: peewee.Database | None) -> None:
    """Close a database's connection of this thread and, for a pool, every idle one."""
    if database is None:
        return
    if not database.is_closed():
        database.close()
    if isinstance(database, PooledPostgresqlDatabase):
        database.close_all()


def locked(query):
    """``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the IMMEDIATE write
    transaction (``write_transaction``) already holds the only write lock."""
    return query.for_update() if is_postgres() else query


def is_postgres() -> bool:
    return isinstance(db.obj, peewee.PostgresqlDatabase)


def dialect() -> str:
    return "postgres" if is_postgres() else "sqlite"


def write_transaction():
    """A transaction that takes the write lock at once, or joins the one already open.

    On SQLite, where row locks do not exist, ``BEGIN IMMEDIATE`` serialises
    writers so the same guarantees hold as with ``SELECT ... FOR UPDATE`` on
    PostgreSQL (docs/domain.md conventions). Operations call each other (sending
    schedules a call, a webhook stores a message and its outbox row): inside an
    open transaction they simply join it, so an error anywhere rolls back the
    whole, and no savepoint round trips are spent. Code that wants to survive
    a failing inner step uses ``db.atomic()`` (a savepoint) explicitly.
    """
    if db.in_transaction():
        return contextlib.nullcontext()
    if is_postgres():
        return db.atomic()
    return _sqlite_write_transaction()


@contextlib.contextmanager
def _sqlite_write_transaction():
    """``BEGIN IMMEDIATE`` after taking turns on a file lock beside the database.

    SQLite lets a second writer wait in its busy handler, which polls with sleeps of
    up to 100 ms: a webhook queued behind another writer then slept on long after
    the lock was free (p99 over 150 ms in ``bench webhooks``). ``flock`` wakes the
    next writer as soon as the holder closes its file, across the threads and the
    processes that share the database (each transaction opens its own file). The
    lock file holds no data.
    """
    path = db.obj.database if isinstance(db.obj, peewee.SqliteDatabase) else ":memory:"
    if path == ":memory:" or path.startswith("file:"):
        with db.atomic(lock_type="IMMEDIATE"):
            yield
        return
    handle = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with db.atomic(lock_type="IMMEDIATE"):
            yield
    finally:
        os.close(handle)  # releases the lock


@contextlib.contextmanager
def connection():
    """Open a connection for the block unless one is open already."""
    opened = db.is_closed()
    if opened:
        db.connect()
    try:
        yield db
    finally:
        if opened and not db.is_closed():
            db.close()
