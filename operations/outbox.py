"""The one way any operation queues work: an outbox row in the caller's transaction.

An operation that changes state and wants an actor to run afterwards calls
``put(task, payload, key)`` inside its own transaction: the row commits or rolls
back with the change, and the relay (``workers/outbox.py``) turns it into a
Dramatiq message. ``key`` names the unit of work; a second ``put`` with the same
key is ignored, so repeating an operation never queues its work twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from db.bulk import bulk_insert
from db.models import OutboxItem, utcnow

COLUMNS = (
    "task",
    "payload",
    "dedupe_key",
    "status",
    "created_at",
    "enqueued_at",
    "done_at",
    "attempts",
    "last_error",
)


def key(kind: str, entity_id: int | str) -> str:
    """The dedupe key of one unit of work, e.g. ``key("send_anfrage", 42)``."""
    return f"{kind}:{entity_id}"


def put(task: str, payload: dict, key: str, *, now: dt.datetime | None = None) -> None:
    """Queue ``task(**payload)`` once per ``key``, in the current transaction."""
    OutboxItem.insert(
        task=task, payload=payload, dedupe_key=key, created_at=now or utcnow()
    ).on_conflict_ignore().execute()


def put_many(items: Iterable[tuple[str, dict, str]], *, now: dt.datetime) -> None:
    """``put`` for many new items at once (a bundle round queues thousands).

    The rows go in with one bulk insert (COPY on PostgreSQL), so the keys must be
    new: rounds create the Anfragen they queue in the same transaction.
    """
    rows = [
        {
            "task": task,
            "payload": payload,
            "dedupe_key": item_key,
            "status": "offen",
            "created_at": now,
            "enqueued_at": None,
            "done_at": None,
            "attempts": 0,
            "last_error": None,
        }
        for task, payload, item_key in items
    ]
    bulk_insert(OutboxItem, COLUMNS, rows)


def pending(key: str) -> bool:
    """Whether the work of ``key`` is queued and not done yet."""
    return (
        OutboxItem.select()
        .where((OutboxItem.dedupe_key == key) & OutboxItem.status.in_(("offen", "eingereiht")))
        .exists()
    )


def put_again(task: str, payload: dict, key: str, *, now: dt.datetime | None = None) -> None:
    """Queue ``task(**payload)`` under ``key`` even if that key was done or failed before
    (staff asking again for work that did not happen); in the current transaction."""
    now = now or utcnow()
    changed = (
        OutboxItem.update(
            task=task,
            payload=payload,
            status="offen",
            created_at=now,
            enqueued_at=None,
            done_at=None,
            attempts=0,
            last_error=None,
        )
        .where(OutboxItem.dedupe_key == key)
        .execute()
    )
    if not changed:
        put(task, payload, key, now=now)


def get(key: str) -> OutboxItem:
    """The outbox row of ``key``."""
    return OutboxItem.get(OutboxItem.dedupe_key == key)


def mark_done(key: str, *, now: dt.datetime | None = None) -> int:
    """Mark the row of ``key`` done (its work happened another way); returns rows changed."""
    return (
        OutboxItem.update(status="erledigt", done_at=now or utcnow())
        .where(OutboxItem.dedupe_key == key)
        .execute()
    )
