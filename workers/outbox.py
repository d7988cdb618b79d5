"""The outbox relay: database rows of work become Dramatiq messages.

Operations write an ``OutboxItem`` in the same transaction as the state change
that makes the work necessary; this relay turns open items into messages. A
message carries ids only. Sending twice is harmless because every actor is
idempotent and keyed like its outbox item.
"""

from __future__ import annotations

import datetime as dt
import logging

import dramatiq

from db.database import is_postgres, write_transaction
from db.models import OutboxItem, utcnow
from workers import broker, clock

broker.ensure()
log = logging.getLogger(__name__)
STALE_AFTER = dt.timedelta(minutes=10)


EMAIL_BATCH = 50


def _claim_open(limit: int, now: dt.datetime) -> list[tuple[int, str, dict]]:
    """Mark up to ``limit`` open items ``eingereiht`` (oldest first) and return their
    (id, task, payload), in one statement: the relay runs beside busy workers, and
    reading 2000 model rows and writing them back by an id list cost twice
    the CPU. Inside the caller's write transaction (PostgreSQL: rows another relay
    holds are skipped)."""
    oldest_open = (
        OutboxItem.select(OutboxItem.id)
        .where(OutboxItem.status == "offen")
        .order_by(OutboxItem.created_at, OutboxItem.id)
        .limit(limit)
    )
    if is_postgres():
        oldest_open = oldest_open.for_update("FOR UPDATE SKIP LOCKED")
    claim = (
        OutboxItem.update(status="eingereiht", enqueued_at=now, attempts=OutboxItem.attempts + 1)
        .where(OutboxItem.id.in_(oldest_open))
        .returning(OutboxItem.id, OutboxItem.task, OutboxItem.payload, OutboxItem.created_at)
    )
    rows = sorted(claim.tuples().execute(), key=lambda row: (row[3], row[0]))
    return [(item_id, task, payload) for item_id, task, payload, _ in rows]


def relay(limit: int = 2000) -> int:
    """Enqueue open outbox items; returns how many were enqueued.

    ``send_email`` items go out as ``send_emails`` batches (``EMAIL_BATCH`` each,
    one SMTP connection per batch); every other item as one message of its task.
    An item whose task names no actor stays open with the error noted."""
    current = dramatiq.get_broker()
    actors: dict = {}
    enqueued = 0
    with write_transaction():
        items = _claim_open(limit, utcnow())
        batch_actor = _actor(current, "send_emails", actors)
        if batch_actor is not None:
            emails = [item for item in items if item[1] == "send_email"]
            for start in range(0, len(emails), EMAIL_BATCH):
                chunk = emails[start : start + EMAIL_BATCH]
                batch_actor.send_with_options(
                    kwargs={"email_ids": [payload["email_id"] for _, _, payload in chunk]},
                    outbox_ids=[item_id for item_id, _, _ in chunk],
                )
            enqueued += len(emails)
            items = [item for item in items if item[1] != "send_email"]
        for item_id, task, payload in items:
            actor = _actor(current, task, actors)
            if actor is None:
                OutboxItem.update(
                    status="offen", enqueued_at=None, last_error=f"no actor named {task!r}"
                ).where(OutboxItem.id == item_id).execute()
                continue
            actor.send_with_options(kwargs=payload, outbox_id=item_id)
            enqueued += 1
    return enqueued


def _actor(broker_, name: str, cache: dict):
    if name not in cache:
        try:
            cache[name] = broker_.get_actor(name)
        except dramatiq.errors.ActorNotFound:
            cache[name] = None
    return cache[name]


def reconcile(stale_after: dt.timedelta = STALE_AFTER, now: dt.datetime | None = None) -> dict:
    """Put back work whose message never ran: outbox items enqueued long ago but not done,
    and Email rows stuck in sending or still queued. Everything here is idempotent."""
    from operations.emailing import sending
    from workers.email_actors import send_email

    now = now or utcnow()
    with write_transaction():
        reopened = (
            OutboxItem.update(status="offen")
            .where(
                (OutboxItem.status == "eingereiht") & (OutboxItem.enqueued_at < now - stale_after)
            )
            .execute()
        )
    reclaimed = sending.reclaim_stuck(stale_after, now=now)
    requeued = sending.queued_ids(stale_after, now=now)
    for email_id in reclaimed + requeued:
        send_email.send(email_id)
    return {
        "outbox_reopened": reopened,
        "emails_reclaimed": len(reclaimed),
        "emails_resent": len(requeued),
    }


@dramatiq.actor(queue_name="default", periodic=clock.every("OUTBOX_RECONCILE_CRON"), max_retries=0)
def reconcile_outbox():
    """Every five minutes: re-enqueue what a flushed Redis or a killed worker lost."""
    counts = reconcile()
    if any(counts.values()):
        log.warning("reconcile: %s", counts)
    return counts


@dramatiq.actor(queue_name="default", periodic=clock.every("OUTBOX_RELAY_CRON"), max_retries=0)
def relay_outbox():
    """Every minute: enqueue outbox work that is still open."""
    count = relay()
    if count:
        log.info("outbox: enqueued %d items", count)
    return count
