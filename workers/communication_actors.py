"""Actors that send Anfragen and the emails following answers, and the daily follow-up.

Each one calls an operation in ``operations.sending``; every operation is
keyed so that a second delivery of the same message changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging

import dramatiq

from db.models import utcnow
from operations import OperationError, conflicts, placements
from operations import sending as ops
from workers import broker, clock

broker.ensure()
log = logging.getLogger(__name__)


@dramatiq.actor(queue_name="emails", max_retries=10, min_backoff=5_000, max_backoff=600_000)
def send_anfrage(anfrage_id: int, requested_by: str | None = None):
    """Send a bundle (email or phone call); a repeated message finds it sent and stops.

    ``requested_by``: the staff member who sent it from the console (their audit row)."""
    try:
        return ops.send_anfrage(anfrage_id, actor=requested_by or "worker")
    except OperationError as error:
        if error.code == "RATE_LIMITED":  # the weekly rule: try again when it allows
            retry_at = dt.datetime.fromisoformat(error.details["retry_at"])
            delay_ms = max(1000, int((retry_at - utcnow()).total_seconds() * 1000) + 1000)
            send_anfrage.send_with_options(args=(anfrage_id, requested_by), delay=delay_ms)
        elif error.code != "ALREADY_SENT":
            log.warning("A%s not sent: %s", anfrage_id, error)
        return error.as_dict()


@dramatiq.actor(queue_name="emails", max_retries=10)
def send_conflict_notice(anfrage_id: int, patient_ids: list[int]):
    email = ops.queue_conflict_notice(anfrage_id, patient_ids)
    return email.id if email else None


@dramatiq.actor(queue_name="emails", max_retries=10)
def send_acceptance_confirmation(anfrage_id: int):
    email = ops.queue_acceptance_confirmation(anfrage_id)
    return email.id if email else None


@dramatiq.actor(queue_name="emails", max_retries=10)
def send_placement_email(
    platzsuche_id: int,
    template: str | None = None,
    meeting: dict | None = None,
    therapist_id: int | None = None,
    replaces: int | None = None,
    number: int | None = None,
):
    """The placement email (at acceptance: ``therapist_id`` and no template, so the default
    for the therapist's contact data; from staff: their template; after a conflict
    reassignment: ``replaces`` and its ``number``). Rendered here, in the worker, because
    it carries signed links."""
    email = ops.queue_placement_email(
        platzsuche_id,
        template or None,
        meeting or None,
        therapist_id=therapist_id,
        replaces=replaces,
        number=number,
    )
    return email.id if email else None


@dramatiq.actor(queue_name="emails", max_retries=10)
def send_reassignment_confirmation(
    platzsuche_id: int, therapist_id: int, anfrage_id: int, number: int
):
    """To the therapist a conflict was reassigned to (operations/conflicts.py)."""
    email = conflicts.queue_reassignment_confirmation(
        platzsuche_id, therapist_id, anfrage_id, number
    )
    return email.id if email else None


@dramatiq.actor(queue_name="emails", max_retries=10)
def send_reassignment_withdrawal(
    platzsuche_id: int, therapist_id: int, anfrage_id: int | None, number: int
):
    """To the therapist a conflict was taken from: the confirmation is void."""
    email = conflicts.queue_reassignment_withdrawal(platzsuche_id, therapist_id, anfrage_id, number)
    return email.id if email else None


@dramatiq.actor(queue_name="emails", max_retries=10)
def send_placement_reminder(platzsuche_id: int, therapist_id: int):
    """The one reminder to a placed patient who has not reported yet."""
    email = placements.queue_placement_reminder(platzsuche_id, therapist_id)
    return email.id if email else None


@dramatiq.actor(queue_name="default", periodic=clock.follow_up_schedule(), max_retries=3)
def placement_follow_up():
    """Daily: reminders after PLACEMENT_REMINDER_DAYS, silence as consent after
    PLACEMENT_CONFIRM_DAYS (docs/domain.md §11.3)."""
    done = placements.run_placement_follow_up(actor="clock")
    log.info(
        "placement follow-up: %d reminders, %d confirmed by silence",
        len(done["reminded"]),
        len(done["confirmed"]),
    )
    return {k: len(v) for k, v in done.items()}


@dramatiq.actor(queue_name="default", periodic=clock.follow_up_schedule(), max_retries=3)
def follow_up():
    """Daily: a call (or reminder) for inquiries without an answer after the threshold."""
    done = ops.run_follow_up(actor="clock")
    log.info("follow-up: %d calls, %d reminders, %d skipped", *map(len, done.values()))
    return {k: len(v) for k, v in done.items()}
