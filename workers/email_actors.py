"""Email actors: thin wrappers around ``operations.emailing.sending``."""

from __future__ import annotations

import dramatiq

from operations.emailing.sending import MAX_TEMPORARY_FAILURES, transmit, transmit_batch
from workers import broker

broker.ensure()


@dramatiq.actor(
    queue_name="emails",
    # The row counts its temporary failures and turns Fehlgeschlagen by itself;
    # Dramatiq keeps retrying until then (5 s, 10 s, 20 s ... at most 10 min apart).
    # Other errors (database briefly away) are retried the same way.
    max_retries=MAX_TEMPORARY_FAILURES,
    min_backoff=5_000,
    max_backoff=600_000,
    time_limit=300_000,
)
def send_email(email_id: int):
    """Send one queued Email row (idempotent: anything not queued is left alone)."""
    return transmit(email_id)


@dramatiq.actor(
    queue_name="emails",
    max_retries=MAX_TEMPORARY_FAILURES,
    min_backoff=5_000,
    max_backoff=600_000,
    time_limit=600_000,
)
def send_emails(email_ids: list[int]):
    """Send a batch of queued Email rows over one SMTP connection (the relay groups them)."""
    return transmit_batch(email_ids)
