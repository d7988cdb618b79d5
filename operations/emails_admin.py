"""Failed emails for staff (docs/domain.md §4, email states): the list, and sending one again.

An email the SMTP server refused for good, or that failed ``MAX_TEMPORARY_FAILURES``
times, stays ``Fehlgeschlagen``; nothing retries it by itself. ``resend_email`` puts
exactly that row back into the queue and its ``send_email`` work into the outbox (the
relay enqueues it; the console never renders or sends anything itself). A second call
finds the row queued or sent and is refused with ``EMAIL_NOT_FAILED``: nothing is
written twice.
"""

from __future__ import annotations

import datetime as dt

from db.database import write_transaction
from db.models import Email, Therapeutenanfrage, Therapist, utcnow
from psymatch.domain.bundling.practice import normalize_email

from . import audit, outbox
from .emailing import headers as email_headers
from .errors import OperationError
from .privacy import ERASED
from .therapist_contact import usable_email

# Kinds that ask the therapist about an Anfrage: pointless once it is answered or closed.
ANFRAGE_KINDS = ("anfrage", "erinnerung")


def failed_emails(limit: int = 200) -> list[dict]:
    """The ``Fehlgeschlagen`` emails, latest failure first (at most ``limit``)."""
    query = (
        Email.select(
            Email.id,
            Email.art,
            Email.therapist,
            Email.patient,
            Email.therapeutenanfrage,
            Email.betreff,
            Email.empfaenger_name,
            Email.fehlermeldung,
            Email.wiederholungsanzahl,
            Email.in_warteschlange_am,
            Email.updated_at,
        )
        .where(Email.status == "Fehlgeschlagen")
        .order_by(Email.updated_at.desc(), Email.id.desc())
        .limit(limit)
    )
    return [
        {
            "email_id": e.id,
            "art": e.art,
            "empfaenger": (
                f"Therapeut {e.therapist_id}" if e.therapist_id else f"Patient {e.patient_id}"
            ),
            "empfaenger_name": e.empfaenger_name or "",
            "anfrage_id": e.therapeutenanfrage_id,
            "betreff": e.betreff,
            "fehlermeldung": e.fehlermeldung or "",
            "versuche": e.wiederholungsanzahl,
            "eingereiht_am": e.in_warteschlange_am,
            "fehlgeschlagen_am": e.updated_at,
        }
        for e in query
    ]


def resend_email(email_id: int, *, actor: str, now: dt.datetime | None = None) -> dict:
    """Queue one failed email again, audited with ``actor``; refused (nothing written):
    ``EMAIL_NOT_FOUND`` 404; ``EMAIL_NOT_FAILED`` 409 (queued, being sent or sent
    already, e.g. a repeated click); ``ANFRAGE_CLOSED`` 409 (an inquiry or reminder whose
    Anfrage was answered or closed meanwhile); ``RECIPIENT_ERASED`` 409 (GDPR erasure);
    ``THERAPIST_EMAIL_MISSING`` 409 (the therapist has no address any more);
    ``THERAPIST_EMAIL_INVALID`` 409 (a bounce marked the address undeliverable: the email
    a bounce failed is not sent to the dead address again).

    An email to a therapist goes to the therapist's current address: one staff corrected
    after the failure replaces the stored recipient.

    The retry count starts again at 0 so that temporary failures get their full budget
    again; the audit row keeps the count and the error it had."""
    now = now or utcnow()
    actor = audit.actor_name(actor) if (actor or "").strip() else ""
    if not actor:
        raise OperationError("ACTOR_REQUIRED", "the staff member who resends is required")
    with write_transaction():
        email = Email.locked_by_id(email_id)
        if email is None:
            raise OperationError("EMAIL_NOT_FOUND", f"no email {email_id}", status=404)
        if email.status != "Fehlgeschlagen":
            raise OperationError(
                "EMAIL_NOT_FAILED",
                f"email {email_id} is {email.status}, not Fehlgeschlagen: nothing to resend",
                status=409,
                details={"status": email.status},
            )
        if email.art in ANFRAGE_KINDS and email.therapeutenanfrage_id is not None:
            anfrage = Therapeutenanfrage.get_or_none(
                Therapeutenanfrage.id == email.therapeutenanfrage_id
            )
            if anfrage is not None and anfrage.antwort_datum is not None:
                raise OperationError(
                    "ANFRAGE_CLOSED",
                    f"A{anfrage.id} is {anfrage.antworttyp} already: the email is not needed",
                    status=409,
                )
        if email.empfaenger_email == ERASED:
            raise OperationError(
                "RECIPIENT_ERASED", f"the recipient of email {email_id} was erased", status=409
            )
        changes = {}
        if email.therapist_id is not None:  # staff may have entered a new address meanwhile
            therapist = Therapist.by_id(email.therapist_id)
            if therapist is not None and therapist.email_ungueltig_seit is not None:
                raise OperationError(  # a bounce: sending again would reach nobody
                    "THERAPIST_EMAIL_INVALID",
                    f"the address of therapist {email.therapist_id} is marked undeliverable "
                    "since a bounce: call instead, or enter a new address first",
                    status=409,
                )
            current = usable_email(therapist) if therapist is not None else None
            if current is None:
                raise OperationError(
                    "THERAPIST_EMAIL_MISSING",
                    f"therapist {email.therapist_id} has no email address now: call instead",
                    status=409,
                )
            if current != normalize_email(email.empfaenger_email):
                changes["empfaenger_email"] = current
        previous = {
            "attempts": email.wiederholungsanzahl,
            "error": email.fehlermeldung,
            "address_changed": bool(changes),
        }
        Email.update(
            status="In_Warteschlange",
            in_warteschlange_am=now,
            wiederholungsanzahl=0,
            updated_at=now,
            **changes,
        ).where((Email.id == email_id) & (Email.status == "Fehlgeschlagen")).execute()
        outbox.put_again(
            "send_email",
            {"email_id": email.id},
            email_headers.outbox_key(email.idempotenz_schluessel),
            now=now,
        )
        audit.record(actor, "resend_email", "email", email.id, previous, at=now)
    return {"email_id": email.id, "status": "In_Warteschlange", "art": email.art}
