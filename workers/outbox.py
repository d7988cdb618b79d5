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

from db.database import write_transaction
from db.models import OutboxItem, utcnow
from workers import broker, clock

broker.ensure()
log = logging.getLogger(__name__)
STALE_AFTER = dt.timedelta(minutes=10)


EMAIL_BATCH = 50


def _relay_email_batches(items: list[OutboxItem], current, now) -> int:
    """``send_email`` items go out as ``send_emails`` batches over one SMTP connection."""
    try:
        batch_actor = current.get_actor("send_emails")
    except dramatiq.errors.ActorNotFound:
        return 0
    for start in range(0, len(items), EMAIL_BATCH):
        chunk = items[start : start + EMAIL_BATCH]
        batch_actor.send_with_options(
            kwargs={"email_ids": [item.payload["email_id"] for item in chunk]},
            outbox_ids=[item.id for item in chunk],
        )
    ids = [item.id for item in items]
    OutboxItem.update(status="eingereiht", enqueued_at=now, attempts=OutboxItem.attempts + 1).where(
        OutboxItem.id.in_(ids)
    ).execute()
    return len(items)


def relay(limit: int = 2000) -> int:
    """Enqueue open outbox items; returns how many were enqueued."""
    current = dramatiq.get_broker()
    enqueued = 0
    with write_transaction():
        items = list(
            OutboxItem.select()
            .where(OutboxItem.status == "offen")
            .order_by(OutboxItem.created_at, OutboxItem.id)
            .limit(limit)
        )
        emails = [item for item in items if item.task == "send_email"]
        batched = _relay_email_batches(emails, current, utcnow()) if emails else 0
        enqueued += batched
        if batched:
            items = [item for item in items if item.task != "send_email"]
        for item in items:
            try:
                actor = current.get_actor(item.task)
            except dramatiq.errors.ActorNotFound:
                item.attempts += 1
                item.last_error = f"no actor named {item.task!r}"
                item.save()
                continue
            actor.send_with_options(kwargs=item.payload, outbox_id=item.id)
            item.status = "eingereiht"
            item.enqueued_at = utcnow()
            item.attempts += 1
            item.save()
            enqueued += 1
    return enqueued


def reconcile(stale_after: dt.timedelta = STALE_AFTER, now: dt.datetime | None = None) -> dict:
    """Put back work whose message never ran: outbox items enqueued long ago but not done,
    and Email rows stuck in sending or still queued. Everything here is idempotent."""
    from workers.emailing import sending
    from workers.emailing.actors import send_email

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
