"""Backups of the database at DATABASE_URL (``scripts/backup FILE``, ``scripts/restore FILE``).

PostgreSQL: ``pg_dump`` in its custom format and ``pg_restore``; SQLite: the
online backup API, which copies a consistent snapshot while others keep
writing. A restore goes only into an empty database, so it never mixes two
states.

Both name the staff member (``actor``) in an audit row of the database at the URL:
``backup`` (a backup reads every stored value) after the file is complete, ``restore``
in the restored database once it is there; the details hold the file name, the size
and the schema version, nothing from the rows. A database that is not at the code's
schema version gets no row (``audit.writable``); the functions then return ``False``.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from db import database
from db.models import AuditLog
from psymatch import settings

from . import audit


class BackupError(RuntimeError):
    pass


def _sqlite_path(url: str) -> str:
    db = database.database_from_url(url)
    return db.database


def _pg_url(url: str) -> str:
    """libpq understands postgresql:// URLs; drop options psymatch adds itself."""
    parsed = urlparse(url)
    return parsed._replace(scheme="postgresql").geturl()


def backup(target: str | Path, url: str | None = None, *, actor: str) -> tuple[Path, bool]:
    """Write a backup of the database at ``url`` (default: DATABASE_URL) to ``target``;
    returns the file and whether the audit row was written."""
    actor = audit.actor_name(actor)
    url = url or settings.get().DATABASE_URL
    target = _dump(target, url)
    return target, _audit(url, actor, "backup", target)


def _dump(target: str | Path, url: str) -> Path:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        source = sqlite3.connect(_sqlite_path(url))
        try:
            destination = sqlite3.connect(target)
            with destination:
                source.backup(destination)
            destination.close()
        finally:
            source.close()
        return target
    result = subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", "--file", str(target), _pg_url(url)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip().splitlines()[-1]}")
    return target


def _is_empty(url: str) -> bool:
    db = database.database_from_url(url)
    try:
        return not db.get_tables()
    finally:
        database.release(db)


def restore(source: str | Path, url: str | None = None, *, actor: str) -> bool:
    """Restore ``source`` into the empty database at ``url`` (default: DATABASE_URL);
    returns whether the audit row was written (the backup holds the audit table)."""
    actor = audit.actor_name(actor)
    url = url or settings.get().DATABASE_URL
    _load(Path(source), url)
    return _audit(url, actor, "restore", Path(source))


def _load(source: Path, url: str) -> None:
    if not source.exists():
        raise BackupError(f"no backup file {source}")
    if not _is_empty(url):
        raise BackupError("the target database is not empty; restore into an empty one")
    if url.startswith("sqlite"):
        backup_db = sqlite3.connect(source)
        try:
            destination = sqlite3.connect(_sqlite_path(url))
            with destination:
                backup_db.backup(destination)
            destination.close()
        finally:
            backup_db.close()
        return
    result = subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", _pg_url(url), str(source)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip().splitlines()[-1]}")


def _audit(url: str, actor: str, action: str, file: Path) -> bool:
    """One audit row in the database at ``url`` (which need not be the one the models
    are bound to); ``False`` when it has no audit table."""
    target = database.database_from_url(url)
    try:
        if not audit.writable(target):
            return False
        version = target.execute_sql('SELECT MAX("version") FROM "schema_migrations"').fetchone()
        details = {
            "file": file.name,
            "bytes": file.stat().st_size,
            "backend": "postgres" if url.startswith("postgres") else "sqlite",
            "schema_version": version[0] if version else None,
        }
        with target.bind_ctx([AuditLog]), target.atomic():
            audit.record(actor, action, "database", details=details)
        return True
    finally:
        database.release(target)
