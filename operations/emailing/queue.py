"""Creating Email rows, once per idempotency key, and their outbox items.

``queue_email`` is meant to run inside the caller's transaction, next to the
state change that makes the email necessary (e.g. ``send_anfrage`` sets
``email_id`` and ``gesendet_datum`` in the same transaction), followed by
``outbox_send`` so the relay enqueues ``send_email``. Calling it twice with the
same key returns the first row and creates nothing.
"""

from __future__ import annotations

import datetime as dt

import peewee

from db.crypto import Sealed
from db.database import db
from db.models import Email, EmailInhalt, utcnow
from db.statements import Prepared
from operations import outbox
from psymatch import settings

from . import headers as email_headers
from .render import RenderedEmail

_KEYED = Prepared(
    lambda p: Email.select(Email.id).where(Email.idempotenz_schluessel == p.key).limit(1).tuples()
)


def queue_email(
    rendered: RenderedEmail,
    *,
    therapist_id: int | None = None,
    patient_id: int | None = None,
    anfrage_id: int | None = None,
    to_email: str | None = None,
    to_name: str | None = None,
    attachments: list[str] = (),
    now: dt.datetime | None = None,
) -> tuple[Email, bool]:
    """The Email row for ``rendered`` with status ``In_Warteschlange``; (row, created).

    Exactly one of ``therapist_id`` / ``patient_id``. ``anfrage_id`` defaults to
    the Anfrage an Anfrage-kind email is about. ``to_email``/``to_name`` default
    to the recipient the renderer saw.
    """
    if (therapist_id is None) == (patient_id is None):
        raise ValueError("an email goes to exactly one of therapist_id / patient_id")
    address = to_email or rendered.to_email
    if not address:
        raise ValueError(f"email {rendered.key} has no recipient address")
    if anfrage_id is None and rendered.kind in email_headers.ANFRAGE_KINDS:
        anfrage_id = rendered.reference_id
    s = settings.get()
    key = rendered.key
    fields = dict(
        therapist=therapist_id,
        patient=patient_id,
        therapeutenanfrage=anfrage_id,
        art=rendered.kind,
        idempotenz_schluessel=key,
        betreff=rendered.subject,
        # A patient's address is encrypted at rest; a therapist's stays plaintext.
        empfaenger_email=Sealed(address) if patient_id is not None else address,
        empfaenger_name=to_name or rendered.to_name,
        absender_email=s.MAIL_FROM,
        absender_name=s.MAIL_FROM_NAME,
        message_id=rendered.message_id,
        status="In_Warteschlange",
        in_warteschlange_am=now or utcnow(),
        attachments=list(attachments),
    )
    # the usual answer is "none yet": asked by the indexed key alone, not the whole row
    if _KEYED.first(key=key) is not None:
        return Email.get(Email.idempotenz_schluessel == key), False
    try:
        with db.atomic():  # a savepoint when the caller has a transaction open
            email = Email.create(**fields)
            email.inhalt = EmailInhalt.create(
                email=email.id, inhalt_text=rendered.text, inhalt_html=rendered.html
            )
            return email, True
    except peewee.IntegrityError:
        # A concurrent transaction created the same key first: that row is the one.
        existing = Email.get_or_none(Email.idempotenz_schluessel == key)
        if existing is None:
            raise
        return existing, False


def outbox_send(email: Email) -> str:
    """Queue the outbox item that makes the relay enqueue ``send_email`` for ``email``
    (once); returns its dedupe key."""
    key = email_headers.outbox_key(email.idempotenz_schluessel)
    outbox.put("send_email", {"email_id": email.id}, key)
    return key
