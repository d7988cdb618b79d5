"""Backups of the database at DATABASE_URL (``scripts/backup FILE``, ``scripts/restore FILE``).

PostgreSQL: ``pg_dump`` in its custom format and ``pg_restore``; SQLite: the
online backup API, which copies a consistent snapshot while others keep
writing. A restore goes only into an empty database, so it never mixes two
states.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from db import database
from psymatch import settings


class BackupError(RuntimeError):
    pass


def _sqlite_path(url: str) -> str:
    db = database.database_from_url(url)
    return db.database


def _pg_url(url: str) -> str:
    """libpq understands postgresql:// URLs; drop options psymatch adds itself."""
    parsed = urlparse(url)
    return parsed._replace(scheme="postgresql").geturl()


def backup(target: str | Path, url: str | None = None) -> Path:
    url = url or settings.get().DATABASE_URL
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


def restore(source: str | Path, url: str | None = None) -> None:
    url = url or settings.get().DATABASE_URL
    source = Path(source)
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
