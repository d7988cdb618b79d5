"""Audit rows: who did what to which record, when and why."""

from __future__ import annotations

from db.models import AuditLog, utcnow


def record(
    actor: str,
    action: str,
    entity: str,
    entity_id=None,
    details: dict | None = None,
    reason: str | None = None,
    at=None,
) -> AuditLog:
    """Write one audit row inside the caller's transaction."""
    return AuditLog.create(
        at=at or utcnow(),
        actor=actor or "system",
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        details=details,
        reason=reason,
    )
