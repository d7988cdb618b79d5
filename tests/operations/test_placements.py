"""The placement flow (docs/domain.md §11.3): email at acceptance with three signed patient
links, record_placement_outcome, the reminder and silence as consent."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import (
    AuditLog,
    Email,
    OutboxItem,
    Patient,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
)
from operations import OperationError, placements
from operations.bundles import create_anfrage
from operations.responses import record_response
from operations.searches import update_platzsuche
from operations.sending import queue_placement_email
from psymatch import settings
from psymatch.domain import tokens
from tests import factories as f
from workers.communication_actors import send_placement_email, send_placement_reminder

NOW = f.NOW
LATER = NOW + dt.timedelta(hours=3)


def placed(therapist=None, *, patient=None, now=NOW):
    """A search accepted by ``therapist`` through record_response; returns (search, therapist)."""
    therapist = therapist or f.therapist(telefon="030 555")
    search = f.search(patient_obj=patient or f.patient(status="auf_der_Suche"))
    created = create_anfrage(therapist.id, now=now)
    f.mark_sent(created.anfrage_id, now)
    record_response(created.anfrage_id, {search.patient_id: "angenommen"}, now=now)
    return Platzsuche.get_by_id(search.id), therapist


def deliver_placement_email(search_id: int, when=NOW) -> Email:
    """What the worker does with the outbox row, then the SMTP step marks it sent."""
    item = OutboxItem.get(
        (OutboxItem.task == "send_placement_email")
        & (OutboxItem.dedupe_key.startswith(f"vermittlung:{search_id}."))
    )
    email_id = send_placement_email.fn(**item.payload)
    Email.update(status="Gesendet", gesendet_am=when).where(Email.id == email_id).execute()
    return Email.get_by_id(email_id)


def rows_snapshot():
    return (
        [tuple(r.__data__.items()) for r in Platzsuche.select().order_by(Platzsuche.id)],
        [
            tuple(r.__data__.items())
            for r in TherapeutAnfragePatient.select().order_by(TherapeutAnfragePatient.id)
        ],
        [tuple(r.__data__.items()) for r in Patient.select().order_by(Patient.id)],
        AuditLog.select().count(),
        OutboxItem.select().count(),
        Email.select().count(),
    )


def test_acceptance_queues_the_placement_email_with_three_signed_links(clean_db):
    search, therapist = placed()
    assert search.vermittelter_therapeut_id == therapist.id
    item = OutboxItem.get(OutboxItem.task == "send_placement_email")
    assert item.payload == {"platzsuche_id": search.id, "therapist_id": therapist.id}
    assert Email.select().count() == 0  # rendered by the worker, not at acceptance
    email = deliver_placement_email(search.id)
    assert email.idempotenz_schluessel == f"vermittlung:{search.id}.{therapist.id}"
    assert email.art == "vermittlung" and email.patient_id == search.patient_id
    text = email.inhalt.inhalt_text
    assert f"E-Mail an {therapist.email}" in text  # email_contact: the therapist has email
    links = [line.strip() for line in text.splitlines() if "/v/" in line]
    assert len(links) == 3
    outcomes = {
        tokens.read_placement_token(link.rsplit("/v/", 1)[1], dt.datetime.now(dt.UTC)).outcome
        for link in links
    }
    assert outcomes == {"stattgefunden", "passt_nicht", "kein_termin"}
    for label in ("Erstgespräch hat stattgefunden", "Es passt nicht", "Kein Termin"):
        assert label in text and label in email.inhalt.inhalt_html
    # not in therapy before the patient confirms
    assert Patient.get_by_id(search.patient_id).status == "auf_der_Suche"
    # staff setting erfolgreich later sends no second email
    update_platzsuche(search.id, status="erfolgreich", now=LATER)
    staff_item = OutboxItem.get(OutboxItem.dedupe_key == f"vermittlung:{search.id}")
    assert send_placement_email.fn(**staff_item.payload) == email.id
    assert Email.select().where(Email.art == "vermittlung").count() == 1


def test_phone_only_therapist_gets_the_phone_template(clean_db):
    search, therapist = placed(f.therapist(email=None, telefon="030 777"))
    email = deliver_placement_email(search.id)
    assert "030 777" in email.inhalt.inhalt_text
    assert "rufen Sie" in email.inhalt.inhalt_text


def test_placement_email_is_skipped_when_the_placement_changed_meanwhile(clean_db):
    search, therapist = placed()
    placements.record_placement_outcome(
        search.id, "kein_termin", actor="anna", source="staff", now=LATER
    )
    item = OutboxItem.get(OutboxItem.task == "send_placement_email")
    assert send_placement_email.fn(**item.payload) is None
    assert Email.select().count() == 0


def test_patient_without_email_gets_a_note_and_staff_record_the_outcome(clean_db):
    search, _ = placed(patient=f.patient(email=None, status="auf_der_Suche"))
    assert queue_placement_email(search.id, therapist_id=search.vermittelter_therapeut_id) is None
    assert "Keine E-Mail-Adresse" in Platzsuche.get_by_id(search.id).notizen
    result = placements.record_placement_outcome(
        search.id, "stattgefunden", actor="anna", source="telefon", now=LATER
    )
    assert result["changed"] and Platzsuche.get_by_id(search.id).status == "erfolgreich"


def test_stattgefunden_makes_the_search_erfolgreich_once(clean_db):
    search, therapist = placed()
    other = f.therapist(plz="10117")
    with pytest.raises(OperationError) as error:  # placed: out of the pool
        create_anfrage(other.id, now=NOW)
    assert error.value.code == "NO_ELIGIBLE_PATIENTS"
    result = placements.record_placement_outcome(
        search.id, "stattgefunden", actor="anna", source="staff", now=LATER
    )
    assert result == {
        "platzsuche_id": search.id,
        "therapist_id": therapist.id,
        "outcome": "stattgefunden",
        "changed": True,
        "recorded": "stattgefunden",
    }
    search = Platzsuche.get_by_id(search.id)
    assert search.status == "erfolgreich"
    assert search.erfolgreiche_vermittlung_datum == LATER
    assert search.vermittelter_therapeut_id == therapist.id
    line = TherapeutAnfragePatient.get(TherapeutAnfragePatient.platzsuche == search.id)
    assert (line.status, line.antwortergebnis) == ("angenommen", "in_Sitzungen")
    assert Patient.get_by_id(search.patient_id).status == "in_Therapie"
    audit = AuditLog.get(AuditLog.action == "record_placement_outcome")
    assert audit.actor == "anna"
    assert audit.details["source"] == "staff" and audit.details["outcome"] == "stattgefunden"
    before = rows_snapshot()
    again = placements.record_placement_outcome(
        search.id, "stattgefunden", actor="anna", source="staff", now=LATER
    )
    assert not again["changed"] and again["recorded"] == "stattgefunden"
    other_answer = placements.record_placement_outcome(
        search.id, "passt_nicht", actor="bernd", source="staff", therapist_id=therapist.id
    )
    assert not other_answer["changed"] and other_answer["recorded"] == "stattgefunden"
    assert rows_snapshot() == before


@pytest.mark.parametrize("outcome", ["passt_nicht", "kein_termin"])
def test_passt_nicht_and_kein_termin_exclude_the_therapist_and_return_to_the_pool(
    clean_db, outcome
):
    search, therapist = placed()
    result = placements.record_placement_outcome(
        search.id, outcome, actor="bernd", source="staff", now=LATER
    )
    assert result["changed"] and result["recorded"] == outcome
    search = Platzsuche.get_by_id(search.id)
    assert search.status == "aktiv" and search.vermittelter_therapeut_id is None
    [entry] = search.ausgeschlossene_therapeuten
    assert entry["id"] == therapist.id and entry["reason"].startswith(outcome)
    assert entry["by"] == "bernd"
    line = TherapeutAnfragePatient.get(TherapeutAnfragePatient.platzsuche == search.id)
    assert line.antwortergebnis == "nicht_erschienen"
    assert Patient.get_by_id(search.patient_id).status == "auf_der_Suche"
    # back in the pool: another nearby therapist is offered the patient
    other = f.therapist(plz="10117")
    offered = create_anfrage(other.id, now=LATER)
    assert search.patient_id in [p.patient_id for p in offered.selection.patients]
    before = rows_snapshot()
    again = placements.record_placement_outcome(
        search.id, outcome, actor="bernd", source="link", therapist_id=therapist.id
    )
    assert not again["changed"] and again["recorded"] == outcome
    assert rows_snapshot() == before


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"outcome": "in_Sitzungen"}, "INVALID_OUTCOME"),
        ({"outcome": None}, "INVALID_OUTCOME"),
        ({"source": "fax"}, "INVALID_SOURCE"),
        ({"actor": "  "}, "ACTOR_REQUIRED"),
        ({"platzsuche_id": 999999}, "PLATZSUCHE_NOT_FOUND"),
        ({"unplaced": True}, "NOT_PLACED"),
        ({"other_therapist": True}, "NOT_PLACED"),
    ],
)
def test_bad_input_is_refused_with_a_code_and_writes_nothing(clean_db, kwargs, code):
    search, _ = placed()
    unplaced = f.search()
    call = {
        "platzsuche_id": search.id,
        "outcome": "stattgefunden",
        "actor": "anna",
        "source": "staff",
    }
    if kwargs.pop("unplaced", False):
        call["platzsuche_id"] = unplaced.id
    if kwargs.pop("other_therapist", False):
        call["therapist_id"] = f.therapist().id
    call.update(kwargs)
    before = rows_snapshot()
    with pytest.raises(OperationError) as error:
        placements.record_placement_outcome(
            call.pop("platzsuche_id"), call.pop("outcome"), now=LATER, **call
        )
    assert error.value.code == code
    assert rows_snapshot() == before


def test_reminder_after_14_days_once_then_silence_confirms_after_28(clean_db):
    search, therapist = placed()
    deliver_placement_email(search.id, when=NOW)
    no_email, _ = placed(patient=f.patient(email=None, plz="10115"))  # left to staff
    assert placements.run_placement_follow_up(NOW + dt.timedelta(days=13, hours=23)) == {
        "reminded": [],
        "confirmed": [],
    }
    day14 = NOW + dt.timedelta(days=14)
    assert placements.run_placement_follow_up(day14) == {"reminded": [search.id], "confirmed": []}
    assert placements.run_placement_follow_up(day14 + dt.timedelta(hours=1))["reminded"] == []
    item = OutboxItem.get(OutboxItem.task == "send_placement_reminder")
    assert item.dedupe_key == f"vermittlung_erinnerung:{search.id}.{therapist.id}"
    reminder = Email.get_by_id(send_placement_reminder.fn(**item.payload))
    assert reminder.idempotenz_schluessel == f"vermittlung_erinnerung:{search.id}.{therapist.id}"
    assert reminder.betreff == "Erinnerung: Wie war Ihr Erstgespräch?"
    assert reminder.inhalt.inhalt_text.count("/v/") == 3
    assert send_placement_reminder.fn(**item.payload) == reminder.id  # idempotent
    assert placements.run_placement_follow_up(NOW + dt.timedelta(days=20))["reminded"] == []
    assert Platzsuche.get_by_id(search.id).status == "aktiv"
    assert placements.run_placement_follow_up(NOW + dt.timedelta(days=27, hours=23)) == {
        "reminded": [],
        "confirmed": [],
    }
    day28 = NOW + dt.timedelta(days=28)
    assert placements.run_placement_follow_up(day28) == {"reminded": [], "confirmed": [search.id]}
    done = Platzsuche.get_by_id(search.id)
    assert done.status == "erfolgreich" and done.erfolgreiche_vermittlung_datum == day28
    audit = AuditLog.get(AuditLog.action == "record_placement_outcome")
    assert audit.actor == "automatisch" and audit.details["source"] == "automatisch"
    assert "Schweigen gilt als Zustimmung" in done.notizen
    assert placements.run_placement_follow_up(day28 + dt.timedelta(days=1)) == {
        "reminded": [],
        "confirmed": [],
    }
    assert Platzsuche.get_by_id(no_email.id).status == "aktiv"  # no email: no silence rule


def test_no_reminder_or_silence_after_an_answer(clean_db):
    search, therapist = placed()
    deliver_placement_email(search.id, when=NOW)
    placements.record_placement_outcome(
        search.id, "passt_nicht", actor="patient", source="link", therapist_id=therapist.id
    )
    for days in (14, 28, 40):
        assert placements.run_placement_follow_up(NOW + dt.timedelta(days=days)) == {
            "reminded": [],
            "confirmed": [],
        }


def test_awaiting_confirmation_lists_open_placements(clean_db):
    search, therapist = placed()
    deliver_placement_email(search.id, when=NOW)
    [row] = placements.awaiting_confirmation(NOW + dt.timedelta(days=3))
    assert row["platzsuche_id"] == search.id and row["therapist_id"] == therapist.id
    assert row["email_status"] == "Gesendet" and row["days"] == 3
    assert row["reminder_status"] is None


def test_no_email_is_rendered_without_a_signing_key(clean_db):
    """Console kernels have no SIGNING_KEY: accepting and recording outcomes there only
    writes outbox rows; the worker renders and signs."""
    before = settings.get()
    try:
        settings.override(SIGNING_KEY="")
        with pytest.raises(settings.SettingsError):
            tokens.placement_link(1, 2, "stattgefunden")  # signing would fail here
        search, _ = placed()
        placements.record_placement_outcome(
            search.id, "stattgefunden", actor="anna", source="staff", now=LATER
        )
    finally:
        settings.override(SIGNING_KEY=before.SIGNING_KEY)
    assert Email.select().count() == 0
    assert Therapeutenanfrage.select().count() == 1


def test_staff_send_a_meeting_confirmation_besides_the_automatic_email(clean_db):
    search, therapist = placed()
    first = deliver_placement_email(search.id)
    result = placements.request_placement_email(
        search.id,
        "meeting_confirmation_email",
        {"date": "2026-12-10", "time": "10:30"},
        actor="anna",
        now=LATER,
    )
    assert result["template"] == "meeting_confirmation_email"
    item = OutboxItem.get(OutboxItem.dedupe_key.startswith("vermittlung_staff:"))
    email = Email.get_by_id(send_placement_email.fn(**item.payload))
    assert email.id != first.id
    assert email.idempotenz_schluessel == f"vermittlung_termin:{search.id}.{therapist.id}"
    text = email.inhalt.inhalt_text
    assert "10. Dezember 2026" in text and "10:30 Uhr" in text and text.count("/v/") == 3
    assert send_placement_email.fn(**item.payload) == email.id  # once
    audit = AuditLog.get(AuditLog.action == "request_placement_email")
    assert audit.actor == "anna"


@pytest.mark.parametrize(
    "template, meeting, therapist_fields, code",
    [
        ("fax", None, {}, "INVALID_TEMPLATE"),
        ("meeting_confirmation_phone", {"date": "2026-12-10"}, {}, "MEETING_DETAILS_REQUIRED"),
        (
            "meeting_confirmation_phone",
            {"date": "x", "time": "10:30"},
            {},
            "MEETING_DETAILS_REQUIRED",
        ),
        ("email_contact", None, {"email": None}, "THERAPIST_CONTACT_MISSING"),
    ],
)
def test_staff_email_requests_are_checked(clean_db, template, meeting, therapist_fields, code):
    search, _ = placed(f.therapist(telefon="030 1", **therapist_fields))
    unplaced = f.search()
    before = rows_snapshot()
    with pytest.raises(OperationError) as error:
        placements.request_placement_email(search.id, template, meeting, actor="anna")
    assert error.value.code == code
    with pytest.raises(OperationError) as error:
        placements.request_placement_email(unplaced.id, "phone_contact", actor="anna")
    assert error.value.code == "NOT_PLACED"
    assert rows_snapshot() == before


def test_the_clock_runs_the_placement_follow_up_daily():
    from workers.communication_actors import placement_follow_up

    hour, minute = (int(p) for p in settings.get().FOLLOW_UP_RUN_TIME.split(":"))
    assert placement_follow_up.options["periodic"].parsed_from == f"{minute} {hour} * * *"
