"""The outbox relay: database rows of work become Dramatiq messages.

Operations write an ``OutboxItem`` in the same transaction as the state change
that makes the work necessary; this relay turns open items into messages. A
message carries ids only. Sending twice is harmless because every actor is
idempotent and keyed like its outbox item.
"""

from __future__ import annotations

import logging

import dramatiq
from periodiq import cron

from db.database import write_transaction
from db.models import OutboxItem, utcnow
from workers import broker

broker.ensure()
log = logging.getLogger(__name__)


def relay(limit: int = 500) -> int:
    """Enqueue open outbox items; returns how many were enqueued."""
    current = dramatiq.get_broker()
    enqueued = 0
    with write_transaction():
        items = (
            OutboxItem.select()
            .where(OutboxItem.status == "offen")
            .order_by(OutboxItem.created_at, OutboxItem.id)
            .limit(limit)
        )
        for item in items:
            try:
                actor = current.get_actor(item.task)
            except dramatiq.errors.ActorNotFound:
                item.attempts += 1
                item.last_error = f"no actor named {item.task!r}"
                item.save()
                continue
            actor.send(**item.payload)
            item.status = "eingereiht"
            item.enqueued_at = utcnow()
            item.attempts += 1
            item.save()
            enqueued += 1
    return enqueued


@dramatiq.actor(queue_name="default", periodic=cron("* * * * *"), max_retries=0)
def relay_outbox():
    """Every minute: enqueue outbox work that is still open."""
    count = relay()
    if count:
        log.info("outbox: enqueued %d items", count)
    return count
