"""Failed emails: the list staff see and sending exactly one of them again."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import AuditLog, Email, EmailInhalt, OutboxItem, Therapeutenanfrage, Therapist
from operations import outbox
from operations.bundles import create_anfrage
from operations.emails_admin import failed_emails, resend_email
from operations.errors import OperationError
from operations.privacy import ERASED
from operations.responses import close_without_response
from tests import factories as f

NOW = f.NOW
LATER = NOW + dt.timedelta(hours=2)


def failed_email(therapist, *, anfrage_id=None, art="sonstige", key="sonstige:1", **fields):
    email = Email.create(
        therapist=therapist.id,
        therapeutenanfrage=anfrage_id,
        art=art,
        idempotenz_schluessel=key,
        betreff="Therapieanfrage",
        empfaenger_email=therapist.email,
        empfaenger_name="Dr. Muster",
        absender_email="anfragen@psymatch.example",
        status="Fehlgeschlagen",
        fehlermeldung="550 mailbox unavailable",
        wiederholungsanzahl=1,
        in_warteschlange_am=NOW,
        updated_at=NOW,
        **fields,
    )
    EmailInhalt.create(email=email.id, inhalt_text="Hallo", inhalt_html="")
    # the outbox row of the first sending, done long ago
    outbox.put("send_email", {"email_id": email.id}, f"send_email:{key}", now=NOW)
    outbox.mark_done(f"send_email:{key}", now=NOW)
    return email


def written():
    return (
        [tuple(e.__data__.items()) for e in Email.select().order_by(Email.id)],
        [tuple(o.__data__.items()) for o in OutboxItem.select().order_by(OutboxItem.id)],
        AuditLog.select().count(),
    )


def test_failed_emails_are_listed_with_their_error(clean_db):
    therapist = f.therapist()
    email = failed_email(therapist)
    [row] = failed_emails()
    assert row["email_id"] == email.id and row["art"] == "sonstige"
    assert row["empfaenger"] == f"Therapeut {therapist.id}"
    assert row["fehlermeldung"] == "550 mailbox unavailable" and row["versuche"] == 1
    Email.update(status="Gesendet").where(Email.id == email.id).execute()
    assert failed_emails() == []


def test_resend_queues_exactly_that_email_once(clean_db):
    therapist = f.therapist()
    email = failed_email(therapist)
    other = failed_email(therapist, key="sonstige:2")
    result = resend_email(email.id, actor="erika", now=LATER)
    assert result == {"email_id": email.id, "status": "In_Warteschlange", "art": "sonstige"}
    row = Email.get_by_id(email.id)
    assert (row.status, row.in_warteschlange_am, row.wiederholungsanzahl) == (
        "In_Warteschlange",
        LATER,
        0,
    )
    item = outbox.get("send_email:sonstige:1")
    assert (item.status, item.task, item.payload) == ("offen", "send_email", {"email_id": email.id})
    assert Email.get_by_id(other.id).status == "Fehlgeschlagen"
    assert outbox.get("send_email:sonstige:2").status == "erledigt"
    [audit] = AuditLog.select().where(AuditLog.action == "resend_email")
    assert (audit.actor, audit.entity, audit.entity_id) == ("erika", "email", str(email.id))
    assert audit.details == {
        "attempts": 1,
        "error": "550 mailbox unavailable",
        "address_changed": False,
    }
    # a repeated click: refused, nothing written
    before = written()
    with pytest.raises(OperationError) as error:
        resend_email(email.id, actor="erika", now=LATER)
    assert error.value.code == "EMAIL_NOT_FAILED" and error.value.status == 409
    assert written() == before


def test_refusals_write_nothing(clean_db):
    therapist = f.therapist()
    f.searches(2)
    anfrage_id = create_anfrage(therapist.id, now=NOW).anfrage_id
    f.mark_sent(anfrage_id, NOW)
    inquiry = failed_email(
        therapist, anfrage_id=anfrage_id, art="anfrage", key=f"anfrage:{anfrage_id}"
    )
    plain = failed_email(therapist, key="sonstige:9")
    close_without_response(anfrage_id, now=NOW)
    assert Therapeutenanfrage.get_by_id(anfrage_id).antworttyp == "keine_Antwort"
    Email.update(empfaenger_email=ERASED).where(Email.id == plain.id).execute()
    before = written()
    for email_id, actor, code in (
        (9999, "erika", "EMAIL_NOT_FOUND"),
        (inquiry.id, "erika", "ANFRAGE_CLOSED"),
        (plain.id, "erika", "RECIPIENT_ERASED"),
        (plain.id, "  ", "ACTOR_REQUIRED"),
    ):
        with pytest.raises(OperationError) as error:
            resend_email(email_id, actor=actor, now=LATER)
        assert error.value.code == code
    assert written() == before


def test_resend_goes_to_the_therapists_current_address(clean_db):
    therapist = f.therapist()
    email = failed_email(therapist)
    gone = failed_email(f.therapist(plz="10117"), key="sonstige:2")
    Therapist.update(email=" Neu@Example.org ").where(Therapist.id == therapist.id).execute()
    Therapist.update(email=None).where(Therapist.id == gone.therapist_id).execute()
    before = written()
    with pytest.raises(OperationError) as error:
        resend_email(gone.id, actor="erika", now=LATER)
    assert error.value.code == "THERAPIST_EMAIL_MISSING" and written() == before
    resend_email(email.id, actor="erika", now=LATER)
    assert Email.get_by_id(email.id).empfaenger_email == "neu@example.org"
    audit = AuditLog.get(AuditLog.action == "resend_email")
    assert audit.details["address_changed"] is True
