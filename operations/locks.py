"""Serialising bundle creation.

Every path that creates Anfragen (rounds, staff composition) takes the
bundling lock exclusively inside its transaction, before it reads the
snapshot, so two of them can never both see a practice as free. Paths that
change contactability (responses, closures, cooling overrides) take it
shared: they wait for a running round, but not for each other. On PostgreSQL
this is a transaction-level advisory lock; on SQLite ``BEGIN IMMEDIATE``
already serialises every writer.
"""

from __future__ import annotations

from db.database import db, is_postgres

BUNDLING_LOCK = 72_633_101


def bundling_lock(shared: bool = False) -> None:
    if is_postgres():
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        db.execute_sql(f"SELECT {function}(%s)", (BUNDLING_LOCK,))
