"""Bounces and out-of-office replies through the webhooks (domain §0 point 12).

Real payloads: a delivery status notification (multipart/report) and a mailer-daemon's
German text through the raw webhook, Postmark's bounce webhook, Mailgun's ``failed``
event, out-of-office replies with and without a return date. Each is processed by the
``process_reply`` path; effects: the therapist's address marked invalid, the bounced
Email failed, a call instead of email, the follow-up and expiry moved.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from db.models import (
    AuditLog,
    Email,
    InboundMessage,
    OutboxItem,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from operations import replies as ops
from operations.bundles import create_anfrage, list_selectable_therapists
from operations.emails_admin import resend_email
from operations.errors import OperationError
from operations.expiry import run_expiry
from operations.placements import request_placement_email
from operations.responses import close_without_response, record_response
from operations.searches import update_platzsuche
from operations.sending import queue_placement_email, run_follow_up, send_anfrage
from operations.therapist_contact import set_therapist_email, usable_email
from psymatch import settings
from psymatch.domain import tokens
from tests import factories as f
from tests import webhook_payloads as wp
from webhooks import inbound, providers
from webhooks.app import create_app
from workers.communication_actors import send_placement_email

NOW = f.NOW  # Monday 2026-11-30 08:00 UTC
LATER = NOW + dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def client(clean_db):
    app = create_app({"TESTING": True})
    inbound.register(app)
    return app.test_client()


@pytest.fixture
def mode():
    previous = settings.get().FOLLOW_UP_MODE
    yield lambda value: settings.override(FOLLOW_UP_MODE=value)
    settings.override(FOLLOW_UP_MODE=previous)


def sent_by_email(searches: int = 2, therapist=None):
    therapist = therapist or f.therapist()
    f.searches(searches)
    anfrage_id = create_anfrage(therapist.id, now=NOW - DAY).anfrage_id
    result = send_anfrage(anfrage_id, now=NOW)
    assert result["channel"] == "email"
    return Therapist.get_by_id(therapist.id), Therapeutenanfrage.get_by_id(anfrage_id)


def post_raw(client, body: bytes):
    return client.post("/webhooks/inbound/raw", data=body, headers=wp.raw_headers(body))


def process(response) -> InboundMessage:
    assert response.status_code in (200, 202), response.get_data(as_text=True)
    row_id = response.get_json()["id"]
    ops.process_inbound(row_id, now=LATER)
    return InboundMessage.get_by_id(row_id)


def dsn(original: Email, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A delivery status notification as Postfix sends it (RFC 3464, multipart/report)."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mail.example.org (Mail Delivery System)"
    report["To"] = "bounces@psymatch.example"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Message-ID"] = wp.new_message_id()
    report["Auto-Submitted"] = "auto-replied"
    report.attach(
        MIMEText(
            "This is the mail system at host mail.example.org.\n\n"
            "I'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients.\n\n"
            f"<{original.empfaenger_email}>: host mx.example.org said: 550 {status} "
            "<recipient>: Recipient address rejected: User unknown\n"
        )
    )
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mail.example.org"
    per_recipient["Final-Recipient"] = f"rfc822; {original.empfaenger_email}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = f"smtp; 550 {status} User unknown"
    status_part = MIMEBase("message", "delivery-status")
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    report.attach(
        MIMEText(
            f"From: psymatch <anfragen@psymatch.example>\nTo: {original.empfaenger_email}\n"
            f"Subject: Suche Psychotherapieplaetze\nMessage-ID: {original.message_id}\n",
            "rfc822-headers",
        )
    )
    return report.as_bytes()


def german_daemon_text(original: Email) -> bytes:
    """A mailer-daemon bounce in German, plain text, the original quoted below."""
    message = EmailMessage()
    message["From"] = "Mail Delivery System <MAILER-DAEMON@web.example>"
    message["To"] = "anfragen@psymatch.example"
    message["Subject"] = "Unzustellbar: Suche Psychotherapieplätze"
    message["Message-ID"] = wp.new_message_id()
    message.set_content(
        "Die Nachricht konnte nicht an folgende Empfänger zugestellt werden:\n\n"
        f"{original.empfaenger_email}\n"
        "Die E-Mail-Adresse existiert nicht. Bitte prüfen Sie die Adresse.\n\n"
        "------ Ursprüngliche Nachricht ------\n"
        f"Message-ID: {original.message_id}\n"
        "Subject: Suche Psychotherapieplätze\n"
    )
    return message.as_bytes()


def test_a_dsn_marks_the_address_invalid_fails_the_email_and_schedules_a_call(client):
    therapist, anfrage = sent_by_email()
    email = Email.get_by_id(anfrage.email_id)
    body = dsn(email)
    row = process(post_raw(client, body))
    assert row.status == "verarbeitet", row.review_reason
    assert row.therapeutenanfrage_id == anfrage.id
    therapist = Therapist.get_by_id(therapist.id)
    assert therapist.email_ungueltig_seit == LATER and usable_email(therapist) is None
    assert "unzustellbar" in therapist.notizen
    email = Email.get_by_id(email.id)
    assert email.status == "Fehlgeschlagen" and "5.1.1" in email.fehlermeldung
    anfrage = Therapeutenanfrage.get_by_id(anfrage.id)
    call = Telefonanruf.get_by_id(anfrage.phone_call_id)
    assert (call.status, call.therapeutenanfrage_id) == ("geplant", anfrage.id)
    assert call.geplantes_datum > NOW.date()
    [marked] = AuditLog.select().where(AuditLog.action == "email_invalid")
    assert (marked.actor, marked.entity_id) == ("email", str(therapist.id))
    # re-delivery: stored once; processing again changes nothing
    again = post_raw(client, body)
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    assert ops.process_inbound(row.id, now=LATER + DAY) == "verarbeitet"
    assert Telefonanruf.select().count() == 1
    assert AuditLog.select().where(AuditLog.action == "email_invalid").count() == 1
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit == LATER


def test_a_second_bounce_of_the_same_address_keeps_the_first_date_and_adds_no_call(client):
    therapist, anfrage = sent_by_email()
    email = Email.get_by_id(anfrage.email_id)
    process(post_raw(client, dsn(email)))
    row = process(post_raw(client, german_daemon_text(email)))
    assert row.status == "verarbeitet"
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit == LATER
    assert Telefonanruf.select().count() == 1
    assert AuditLog.select().where(AuditLog.action == "email_invalid").count() == 1


def test_a_german_mailer_daemon_text_is_a_permanent_bounce(client):
    therapist, anfrage = sent_by_email()
    row = process(post_raw(client, german_daemon_text(Email.get_by_id(anfrage.email_id))))
    assert row.status == "verarbeitet", row.review_reason
    assert row.result["bounce"]["permanent"] is True
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit is not None


def test_a_full_mailbox_is_temporary_and_changes_nothing(client):
    therapist, anfrage = sent_by_email()
    body = dsn(Email.get_by_id(anfrage.email_id), status="4.2.2", action="delayed")
    row = process(post_raw(client, body))
    assert row.status == "ignoriert" and "Vorübergehender" in row.review_reason
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit is None
    assert Email.get_by_id(anfrage.email_id).status == "In_Warteschlange"
    assert Telefonanruf.select().count() == 0


def test_a_bounce_for_an_address_staff_replaced_changes_nothing(client):
    therapist, anfrage = sent_by_email()
    email = Email.get_by_id(anfrage.email_id)
    set_therapist_email(therapist.id, "neu@example.org", "Anna", now=NOW)
    row = process(post_raw(client, dsn(email)))
    assert row.status == "ignoriert"
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit is None


def test_a_bounce_naming_nothing_of_ours_goes_to_review(client):
    message = EmailMessage()
    message["From"] = "MAILER-DAEMON@mail.example.org"
    message["To"] = "anfragen@psymatch.example"
    message["Subject"] = "Mail delivery failed: returning message to sender"
    message["Message-ID"] = wp.new_message_id()
    message.set_content("550 5.1.1 <niemand@unbekannt.example>: User unknown\n")
    row = process(post_raw(client, message.as_bytes()))
    assert row.status == "pruefung" and "keine Anfrage" in row.review_reason


# --- provider bounce events -------------------------------------------------------------------


def postmark_bounce(address: str, kind: str = "HardBounce", bounce_id: int = 4323372036) -> dict:
    """Postmark's bounce webhook body (documented fields)."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": bounce_id,
        "Type": kind,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "anfrage",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": address,
        "From": "anfragen@psymatch.example",
        "BouncedAt": "2026-11-30T09:00:00Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Suche Psychotherapieplätze",
    }


def post_postmark(client, body):
    return client.post("/webhooks/inbound/postmark", json=body, headers=wp.postmark_auth())


def test_postmark_hard_bounce_marks_the_address(client):
    therapist, anfrage = sent_by_email()
    body = postmark_bounce(therapist.email.upper())
    row = process(post_postmark(client, body))
    assert row.status == "verarbeitet", row.review_reason
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit == LATER
    assert Therapeutenanfrage.get_by_id(anfrage.id).phone_call_id is not None
    assert post_postmark(client, body).status_code == 200  # redelivery: a duplicate


def test_postmark_soft_bounce_changes_nothing(client):
    therapist, _ = sent_by_email()
    row = process(post_postmark(client, postmark_bounce(therapist.email, "SoftBounce")))
    assert row.status == "ignoriert"
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit is None


@pytest.mark.parametrize(
    ("change", "code"),
    [({"Email": None}, "malformed"), ({"Type": "Exploded"}, "malformed")],
)
def test_postmark_bounce_refusals_store_nothing(client, change, code):
    body = {**postmark_bounce("x@example.org"), **change}
    response = post_postmark(client, body)
    assert response.status_code == 400 and response.get_json()["error"] == code
    assert InboundMessage.select().count() == 0


def mailgun_failed(address: str, message_id: str | None, severity="permanent", event="failed"):
    """Mailgun's event webhook body (signature inside, ``event-data``)."""
    stamp, token = str(int(time.time())), secrets.token_hex(25)
    return {
        "signature": {
            "timestamp": stamp,
            "token": token,
            "signature": providers.mailgun_signature(stamp, token),
        },
        "event-data": {
            "event": event,
            "id": secrets.token_hex(8),
            "timestamp": time.time(),
            "severity": severity,
            "reason": "bounce",
            "recipient": address,
            "message": {"headers": {"message-id": (message_id or "").strip("<>")}},
            "delivery-status": {
                "code": 550,
                "enhanced-code": "5.1.1" if severity == "permanent" else "4.2.2",
                "message": "5.1.1 The email account that you tried to reach does not exist.",
                "attempt-no": 1,
            },
        },
    }


def post_mailgun_event(client, body):
    return client.post("/webhooks/inbound/mailgun/events", json=body)


def test_mailgun_failed_event_marks_the_address_found_by_message_id(client):
    therapist, anfrage = sent_by_email()
    email = Email.get_by_id(anfrage.email_id)
    body = mailgun_failed("someone-else@example.org", email.message_id)
    row = process(post_mailgun_event(client, body))
    # the event names an address the therapist does not have: nothing is marked
    assert row.status == "ignoriert", row.review_reason
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit is None
    row2 = process(post_mailgun_event(client, mailgun_failed(therapist.email, email.message_id)))
    assert row2.status == "verarbeitet"
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit == LATER
    assert Email.get_by_id(email.id).status == "Fehlgeschlagen"


def test_mailgun_event_refusals(client):
    body = mailgun_failed("x@example.org", None)
    body["signature"]["signature"] = "0" * 64
    assert post_mailgun_event(client, body).status_code == 401
    delivered = mailgun_failed("x@example.org", None, event="delivered")
    response = post_mailgun_event(client, delivered)
    assert response.status_code == 422 and response.get_json()["error"] == "unsupported_event"
    odd = mailgun_failed("x@example.org", None, severity="sometimes")
    assert post_mailgun_event(client, odd).status_code == 400
    assert InboundMessage.select().count() == 0


# --- after the bounce: by phone until staff enter an address -------------------------------


def test_an_invalid_address_sends_inquiries_and_follow_ups_by_phone(client, mode):
    therapist, anfrage = sent_by_email(searches=4)
    process(post_raw(client, dsn(Email.get_by_id(anfrage.email_id))))
    close_without_response(anfrage.id, actor="Anna", now=NOW + DAY)
    second = create_anfrage(therapist.id, now=NOW + 8 * DAY).anfrage_id
    Therapist.update(naechster_kontakt_moeglich=None).execute()
    result = send_anfrage(second, now=NOW + 30 * DAY)
    assert result["channel"] == "phone"
    assert Email.select().count() == 1  # only the bounced inquiry ever went out
    # staff enter a new address: email again
    answer = set_therapist_email(therapist.id, "praxis-neu@example.org", "Anna", now=NOW + 2 * DAY)
    assert answer["was_invalid"] is True
    fresh = Therapist.get_by_id(therapist.id)
    assert fresh.email_ungueltig_seit is None and usable_email(fresh) == "praxis-neu@example.org"
    [row] = AuditLog.select().where(AuditLog.action == "set_therapist_email")
    assert row.actor == "Anna" and row.details["was_invalid"] is True


def bounced(client, **fields) -> tuple[Therapist, Therapeutenanfrage, str]:
    """A therapist whose inquiry bounced (a real DSN through the raw webhook): the
    therapist, the Anfrage (now followed up by phone) and the dead address."""
    therapist, anfrage = sent_by_email(therapist=f.therapist(**fields))
    row = process(post_raw(client, dsn(Email.get_by_id(anfrage.email_id))))
    assert row.status == "verarbeitet", row.review_reason
    therapist = Therapist.get_by_id(therapist.id)
    assert usable_email(therapist) is None
    return therapist, Therapeutenanfrage.get_by_id(anfrage.id), therapist.email


def accept_first(anfrage: Therapeutenanfrage, now=LATER + DAY) -> Platzsuche:
    """The therapist accepts the Anfrage's first patient on the phone, declines the rest."""
    lines = list(anfrage.zeilen.order_by(TherapeutAnfragePatient.position_in_anfrage))
    answers = {line.patient_id: "abgelehnt_Kapazitaet" for line in lines}
    answers[lines[0].patient_id] = "angenommen"
    record_response(anfrage.id, answers, actor="Anna", source="telefon", now=now)
    return Platzsuche.get_by_id(lines[0].platzsuche_id)


def placement_outbox(search: Platzsuche) -> OutboxItem:
    return (
        OutboxItem.select()
        .where(
            (OutboxItem.task == "send_placement_email")
            & (OutboxItem.payload["platzsuche_id"] == search.id)
        )
        .order_by(OutboxItem.id.desc())
        .first()
    )


def test_a_placement_email_gives_the_phone_not_the_bounced_address(client):
    therapist, anfrage, dead = bounced(client, telefon="030 5550123")
    search = accept_first(anfrage)
    assert Platzsuche.get_by_id(search.id).vermittelter_therapeut_id == therapist.id
    email = Email.get_by_id(send_placement_email.fn(**placement_outbox(search).payload))
    assert email.patient_id == search.patient_id
    text, html = email.inhalt.inhalt_text, email.inhalt.inhalt_html
    assert "Bitte rufen Sie" in text and "030 5550123" in text  # the phone template
    assert "E-Mail: nicht bekannt" in text
    assert dead not in text and dead not in html
    # the therapist is not thanked at the dead address either: only the bounced inquiry
    assert [e.id for e in Email.select().where(Email.therapist == therapist.id)] == [
        anfrage.email_id
    ]
    # staff confirm the success: the default template is the phone one
    update_platzsuche(search.id, status="erfolgreich", actor="Anna", now=LATER + 2 * DAY)
    item = OutboxItem.get(OutboxItem.dedupe_key == f"vermittlung:{search.id}")
    assert item.payload["template"] == "phone_contact"
    final = queue_placement_email(**item.payload, now=LATER + 2 * DAY)
    assert final is not None and "030 5550123" in final.inhalt.inhalt_text
    assert dead not in final.inhalt.inhalt_text
    # an email template would hand the patient the dead address: refused
    other = accept_first(bounced(client, telefon="030 5550124")[1])
    with pytest.raises(OperationError) as caught:
        request_placement_email(other.id, "email_contact", actor="Anna", now=LATER + 2 * DAY)
    assert caught.value.code == "THERAPIST_CONTACT_MISSING"


def test_without_phone_and_usable_address_the_missing_contact_refusal_applies(client):
    therapist, anfrage, dead = bounced(client, telefon=None)
    search = accept_first(anfrage)
    assert send_placement_email.fn(**placement_outbox(search).payload) is None
    search = Platzsuche.get_by_id(search.id)
    assert f"Therapeut {therapist.id} ohne Kontaktdaten" in search.notizen
    assert not Email.select().where(Email.patient == search.patient_id).exists()
    before = (
        AuditLog.select().count(),
        OutboxItem.select().count(),
        Platzsuche.get_by_id(search.id).status,
    )
    for template in (None, "phone_contact", "email_contact"):
        with pytest.raises(OperationError) as caught:
            update_platzsuche(
                search.id, status="erfolgreich", email_template_type=template, actor="Anna"
            )
        assert caught.value.code == "THERAPIST_CONTACT_MISSING", template
        if template is not None:
            with pytest.raises(OperationError) as caught:
                request_placement_email(search.id, template, actor="Anna")
            assert caught.value.code == "THERAPIST_CONTACT_MISSING", template
    after = (
        AuditLog.select().count(),
        OutboxItem.select().count(),
        Platzsuche.get_by_id(search.id).status,
    )
    assert after == before


def test_rule_4_does_not_hold_back_a_practice_whose_address_bounced(client):
    therapist, anfrage, _ = bounced(client)
    close_without_response(anfrage.id, actor="Anna", now=NOW + DAY)
    # the day after: the bounced inquiry (queued yesterday) does not count, the practice
    # is listed and asked again, by phone
    listed = list_selectable_therapists(therapist.plz[:2], now=NOW + 2 * DAY)
    assert therapist.id in [t.id for t in listed]
    second = create_anfrage(therapist.id, now=NOW + 2 * DAY).anfrage_id
    assert send_anfrage(second, now=NOW + 2 * DAY)["channel"] == "phone"
    assert Email.select().count() == 1


def test_a_bounced_email_is_not_sent_to_the_dead_address_again(client):
    therapist, anfrage, dead = bounced(client)
    email = Email.get_by_id(anfrage.email_id)
    assert email.status == "Fehlgeschlagen"
    with pytest.raises(OperationError) as caught:
        resend_email(email.id, actor="Anna", now=LATER + DAY)
    assert (caught.value.code, caught.value.status) == ("THERAPIST_EMAIL_INVALID", 409)
    assert Email.get_by_id(email.id).status == "Fehlgeschlagen"
    assert not AuditLog.select().where(AuditLog.action == "resend_email").exists()
    set_therapist_email(therapist.id, "praxis-neu@example.org", "Anna", now=LATER + DAY)
    resend_email(email.id, actor="Anna", now=LATER + 2 * DAY)
    email = Email.get_by_id(email.id)
    assert (email.status, email.empfaenger_email) == ("In_Warteschlange", "praxis-neu@example.org")


def test_reminder_mode_calls_a_therapist_whose_address_bounced(clean_db, mode):
    mode("reminder")
    therapist, anfrage = sent_by_email()
    Therapist.update(email_ungueltig_seit=NOW).where(Therapist.id == therapist.id).execute()
    done = run_follow_up(NOW + 8 * DAY)
    assert done["reminders"] == [] and len(done["calls"]) == 1
    assert Email.select().count() == 1


@pytest.mark.parametrize(
    ("therapist_id", "email", "actor", "code"),
    [
        (None, "ok@example.org", "Anna", "THERAPIST_NOT_FOUND"),
        ("self", "kein-at-zeichen", "Anna", "INVALID_EMAIL"),
        ("self", "", "Anna", "INVALID_EMAIL"),
        ("self", "ok@example.org", "  ", "ACTOR_REQUIRED"),
        ("self", "same", "Anna", "EMAIL_UNCHANGED"),
    ],
)
def test_set_therapist_email_refusals_change_nothing(clean_db, therapist_id, email, actor, code):
    therapist = f.therapist()
    target = therapist.id if therapist_id == "self" else 999_999
    email = therapist.email if email == "same" else email
    with pytest.raises(OperationError) as caught:
        set_therapist_email(target, email, actor, now=NOW)
    assert caught.value.code == code
    assert Therapist.get_by_id(therapist.id).email == therapist.email
    assert AuditLog.select().count() == 0


def test_editing_the_address_on_the_person_page_clears_the_mark(clean_db):
    from operations.person_edit import edit_therapist

    therapist = f.therapist(email_ungueltig_seit=NOW)
    edit_therapist(therapist.id, {"telefon": "030 1234567"}, actor="Anna", now=NOW)
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit == NOW  # other field: kept
    edit_therapist(therapist.id, {"email": "neu@example.org"}, actor="Anna", now=NOW + DAY)
    fresh = Therapist.get_by_id(therapist.id)
    assert fresh.email_ungueltig_seit is None and usable_email(fresh) == "neu@example.org"
    [row] = AuditLog.select().where(AuditLog.action == "email_invalid_cleared")
    assert row.actor == "Anna"


def test_the_same_address_again_clears_the_mark(clean_db):
    therapist = f.therapist(email_ungueltig_seit=NOW)
    result = set_therapist_email(therapist.id, therapist.email, "Anna", now=NOW + DAY)
    assert result["was_invalid"] is True
    assert Therapist.get_by_id(therapist.id).email_ungueltig_seit is None


# --- out of office ---------------------------------------------------------------------------


def out_of_office(
    anfrage_id: int, text: str, subject="Abwesenheitsnotiz: Suche Psychotherapieplätze"
):
    message = EmailMessage()
    message["From"] = f"Dr. Tina Thera <{wp.sender_of(anfrage_id)}>"
    message["To"] = tokens.reply_address(anfrage_id)
    message["Subject"] = subject
    message["Message-ID"] = wp.new_message_id()
    message["Date"] = "Mon, 30 Nov 2026 09:12:00 +0100"
    message["Auto-Submitted"] = "auto-replied"
    message["In-Reply-To"] = tokens.anfrage_message_id("anfrage", anfrage_id)
    message.set_content(text)
    return message.as_bytes()


def test_out_of_office_with_a_date_moves_the_follow_up_and_the_expiry(client, mode):
    mode("call")
    therapist, anfrage = sent_by_email()
    text = "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich 23.12. nicht in der Praxis."
    row = process(post_raw(client, out_of_office(anfrage.id, text)))
    assert row.status == "verarbeitet", row.review_reason
    anfrage = Therapeutenanfrage.get_by_id(anfrage.id)
    # 23.12.2026 is a Wednesday; 24.12. is a working day (not a public holiday)
    assert anfrage.nachverfolgung_ab == dt.date(2026, 12, 24)
    assert "zurück 23.12.2026" in anfrage.notizen and "bis einschließlich 23.12." in anfrage.notizen
    # day 7 and day 21: nothing happens, the therapist is away
    assert run_follow_up(NOW + 7 * DAY)["calls"] == []
    assert run_expiry(NOW + 21 * DAY)["closed"] == []
    # the day before the return the call is booked for the return day (or the next callable)
    done = run_follow_up(dt.datetime(2026, 12, 23, 8, 0))
    [call_id] = done["calls"]
    assert Telefonanruf.get_by_id(call_id).geplantes_datum >= dt.date(2026, 12, 24)
    # re-delivery and re-processing change nothing
    assert ops.process_inbound(row.id, now=LATER + DAY) == "verarbeitet"
    assert AuditLog.select().where(AuditLog.action == "absence").count() == 1


def test_reminder_waits_for_the_return_day(client, mode):
    mode("reminder")
    therapist, anfrage = sent_by_email()
    text = "I am out of the office and back on December 14th. Kind regards"
    process(post_raw(client, out_of_office(anfrage.id, text, subject="Out of Office")))
    anfrage = Therapeutenanfrage.get_by_id(anfrage.id)
    assert anfrage.nachverfolgung_ab == dt.date(2026, 12, 15)
    assert run_follow_up(dt.datetime(2026, 12, 14, 8, 0))["reminders"] == []
    assert len(run_follow_up(dt.datetime(2026, 12, 15, 8, 0))["reminders"]) == 1


def test_out_of_office_without_a_date_is_noted_not_reviewed(client):
    therapist, anfrage = sent_by_email()
    text = "Ich bin derzeit nicht in der Praxis. Ihre Nachricht wird nach meiner Rückkehr gelesen."
    row = process(post_raw(client, out_of_office(anfrage.id, text)))
    assert row.status == "ignoriert" and "ohne Rückkehrdatum" in row.review_reason
    anfrage = Therapeutenanfrage.get_by_id(anfrage.id)
    assert anfrage.nachverfolgung_ab is None
    assert "Abwesenheitsnotiz ohne Rückkehrdatum" in anfrage.notizen


def test_out_of_office_moves_a_planned_call(client):
    therapist, anfrage = sent_by_email()
    run_follow_up(NOW + 7 * DAY)  # call mode: a call in the next days
    early = Therapeutenanfrage.get_by_id(anfrage.id).phone_call_id
    assert early is not None
    text = "Abwesenheitsnotiz: Ab dem 4. Januar bin ich wieder für Sie erreichbar."
    process(post_raw(client, out_of_office(anfrage.id, text)))
    assert Telefonanruf.get_by_id(early).status == "abgebrochen"
    moved = Telefonanruf.get_by_id(Therapeutenanfrage.get_by_id(anfrage.id).phone_call_id)
    assert moved.status == "geplant" and moved.geplantes_datum >= dt.date(2027, 1, 5)


def test_mail_json_round_trip_keeps_the_report():
    from operations.replies import message_json, stored_message
    from psymatch.domain import reply_parse

    message = reply_parse.message_from_parts(
        subject="x", sender="y", recipients=[], text="z", report={"recipients": ["a@b.de"]}
    )
    row = InboundMessage(message=message_json(message))
    assert stored_message(row).report == {"recipients": ["a@b.de"]}
    assert json.loads(row.message)["report"]["recipients"] == ["a@b.de"]
