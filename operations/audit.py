"""Audit rows: who did what to which record, when and why.

``record`` writes one row inside the caller's transaction. ``write`` writes one in a
transaction of its own, for work that commits in several steps (an import chunk by
chunk, key rotation batch by batch, migrations step by step): its row is written at the
end with the real counts, also when the work failed partway. ``actor_name`` checks the
name of the staff member that every writing ``psymatch`` command requires
(``--actor NAME``).
"""

from __future__ import annotations

import logging
import unicodedata

import peewee

from db import database
from db.models import AuditLog, utcnow

ACTOR_MAX_LENGTH = 100  # audit_log.actor is VARCHAR(100)

log = logging.getLogger(__name__)


def actor_name(value) -> str:
    """The stripped name of the staff member; ``ValueError`` for an empty name, one
    longer than ``ACTOR_MAX_LENGTH`` characters or one with control characters."""
    name = value.strip() if isinstance(value, str) else ""
    if not name:
        raise ValueError("the name of the staff member must not be empty")
    if len(name) > ACTOR_MAX_LENGTH:
        raise ValueError(
            f"the name of the staff member has {len(name)} characters, "
            f"at most {ACTOR_MAX_LENGTH} are allowed"
        )
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ValueError("the name of the staff member must not contain control characters")
    return name


def record(
    actor: str,
    action: str,
    entity: str,
    entity_id=None,
    details: dict | None = None,
    reason: str | None = None,
    at=None,
) -> int:
    """Write one audit row inside the caller's transaction; returns its id.

    An INSERT of the values, not a model instance saved: nothing reads the row back, and
    every operation writes one (building and saving an instance cost a third more)."""
    return AuditLog.insert(
        at=at or utcnow(),
        actor=actor or "system",
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        details=details,
        reason=reason,
    ).execute()


def write(
    actor: str,
    action: str,
    entity: str,
    entity_id=None,
    details: dict | None = None,
    reason: str | None = None,
) -> int:
    """``record`` in a write transaction of its own (joins one that is open)."""
    with database.connection(), database.write_transaction():
        return record(actor, action, entity, entity_id, details, reason)


def write_after_failure(
    actor: str, action: str, entity: str, details: dict, error: BaseException
) -> None:
    """``write`` for work that stopped with ``error``: ``details`` get ``failed`` (the
    kind of error; its message may quote data, so it is not stored). The caller re-raises
    ``error``, so a failure to write this row is logged, not raised. Skipped when the
    schema is not at the code's version (``writable``)."""
    try:
        with database.connection():
            if writable():
                write(actor, action, entity, details={**details, "failed": type(error).__name__})
    except Exception:
        log.warning("the audit row of the failed %s could not be written", action, exc_info=True)


def writable(on=None) -> bool:
    """Whether this code may write audit rows into ``on`` (default: the bound database):
    its schema is at the code's head version. Below it the audit table may be missing
    (it comes with migration 0002; a downgrade below that drops it) or hold its columns
    in an older form (migration 0010 encrypts ``details``), so a row written through the
    model would not fit. Tables are looked up through PostgreSQL's search_path."""
    from db import migrate

    on = on or database.db.obj
    if not (
        _table_exists(on, AuditLog._meta.table_name) and _table_exists(on, "schema_migrations")
    ):
        return False
    version = on.execute_sql('SELECT MAX("version") FROM "schema_migrations"').fetchone()[0]
    return version == migrate.head_version()


def _table_exists(on, table: str) -> bool:
    if isinstance(on, peewee.PostgresqlDatabase):
        return on.execute_sql("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None
    row = on.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None
