"""Versioned, reversible schema migrations.

Each module ``db/migrations/vNNNN_name.py`` defines ``VERSION``, ``NAME`` and
``UP`` / ``DOWN`` (dialect -> list of SQL statements); it may also define
``up(database, dialect)`` / ``down(database, dialect)`` callables for data
steps, run after the SQL of the same direction. Each step runs in its own
transaction together with its row in ``schema_migrations``, so a failed step
leaves the database at the previous version. On PostgreSQL an advisory lock
keeps two ``release`` processes from migrating at the same time.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import ModuleType

from . import migrations as migrations_package
from .database import db, dialect, is_postgres
from .models import utcnow

_ADVISORY_LOCK_KEY = 72_633_001  # any constant unique to psymatch's migrations


class MigrationError(RuntimeError):
    """A migration request that cannot be carried out."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    module: ModuleType

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    def statements(self, direction: str, dialect_name: str) -> list[str]:
        return list(getattr(self.module, direction)[dialect_name])

    def hook(self, direction: str):
        return getattr(self.module, direction.lower(), None)


def discover() -> list[Migration]:
    found = []
    for info in pkgutil.iter_modules(migrations_package.__path__):
        if not info.name.startswith("v"):
            continue
        module = importlib.import_module(f"{migrations_package.__name__}.{info.name}")
        found.append(Migration(module.VERSION, module.NAME, module))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration versions must be 1..n without gaps, found {versions}")
    return found


def _ensure_version_table() -> None:
    db.execute_sql(
        'CREATE TABLE IF NOT EXISTS "schema_migrations" ('
        '"version" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT NULL, '
        '"applied_at" TIMESTAMP NOT NULL)'
    )


def applied_versions() -> list[int]:
    if "schema_migrations" not in db.get_tables():
        return []
    cursor = db.execute_sql('SELECT "version" FROM "schema_migrations" ORDER BY "version"')
    return [row[0] for row in cursor.fetchall()]


def current_version() -> int:
    versions = applied_versions()
    return versions[-1] if versions else 0


def head_version() -> int:
    all_migrations = discover()
    return all_migrations[-1].version if all_migrations else 0


def _lock() -> None:
    if is_postgres():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_KEY,))


def _apply(migration: Migration, direction: str) -> None:
    """Run one step and record it, in one transaction."""
    with db.atomic():
        _lock()
        applied = set(applied_versions())
        if direction == "UP" and migration.version in applied:
            return  # another process did it while we waited for the lock
        if direction == "DOWN" and migration.version not in applied:
            return
        for statement in migration.statements(direction, dialect()):
            db.execute_sql(statement)
        hook = migration.hook(direction)
        if hook is not None:
            hook(db, dialect())
        if direction == "UP":
            p = db.param
            db.execute_sql(
                f'INSERT INTO "schema_migrations" ("version", "name", "applied_at") '
                f"VALUES ({p}, {p}, {p})",
                (migration.version, migration.name, utcnow()),
            )
        else:
            db.execute_sql(
                f'DELETE FROM "schema_migrations" WHERE "version" = {db.param}',
                (migration.version,),
            )


def upgrade(to: int | None = None, report=print) -> list[Migration]:
    """Apply pending migrations up to ``to`` (default: head); returns the applied ones."""
    all_migrations = discover()
    target = all_migrations[-1].version if to is None else to
    if not 0 <= target <= len(all_migrations):
        raise MigrationError(f"no migration version {target} (head is {len(all_migrations)})")
    _ensure_version_table()
    done = set(applied_versions())
    if done and target < max(done):
        raise MigrationError(
            f"database is at version {max(done)}, above {target}: use 'psymatch db downgrade'"
        )
    applied = []
    for migration in all_migrations:
        if migration.version <= target and migration.version not in done:
            _apply(migration, "UP")
            report(f"applied {migration.label}")
            applied.append(migration)
    return applied


def downgrade(to: int | None = None, report=print) -> list[Migration]:
    """Revert migrations down to version ``to`` (default: one step below current)."""
    all_migrations = {m.version: m for m in discover()}
    current = current_version()
    target = max(current - 1, 0) if to is None else to
    if target < 0 or target > current:
        raise MigrationError(f"cannot downgrade from version {current} to {target}")
    reverted = []
    for version in range(current, target, -1):
        migration = all_migrations.get(version)
        if migration is None:
            raise MigrationError(f"database has version {version}, which this code does not know")
        _apply(migration, "DOWN")
        report(f"reverted {migration.label}")
        reverted.append(migration)
    return reverted


def status() -> list[dict]:
    """One entry per known migration: version, name, applied."""
    done = set(applied_versions())
    return [
        {"version": m.version, "name": m.name, "applied": m.version in done} for m in discover()
    ]
