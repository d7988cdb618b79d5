"""Sending Anfragen, the weekly rule, follow-ups, call outcomes, emails after answers."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import (
    Email,
    OutboxItem,
    Patient,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from operations import OperationError
from operations.bundles import create_anfrage
from operations.calls import reschedule, set_call_status
from operations.responses import record_response
from operations.searches import update_platzsuche
from operations.sending import (
    queue_acceptance_confirmation,
    queue_conflict_notice,
    queue_placement_email,
    run_follow_up,
    send_anfrage,
)
from psymatch import settings
from tests import concurrency_workers as work
from tests import factories as f
from tests.operations.test_concurrency import in_two_processes

NOW = f.NOW  # Monday 2026-11-30 08:00 UTC
DAY = dt.timedelta(days=1)


@pytest.fixture
def mode():
    previous = settings.get().FOLLOW_UP_MODE

    def use(value):
        settings.override(FOLLOW_UP_MODE=value)

    yield use
    settings.override(FOLLOW_UP_MODE=previous)


def bundle(therapist=None, searches=2, now=NOW):
    therapist = therapist or f.therapist()
    f.searches(searches)
    return therapist, create_anfrage(therapist.id, now=now).anfrage_id


def test_send_by_email_queues_one_email_and_its_outbox_item(clean_db):
    therapist, anfrage_id = bundle()
    result = send_anfrage(anfrage_id, now=NOW)
    assert result["channel"] == "email"
    email = Email.get_by_id(result["email_id"])
    assert email.status == "In_Warteschlange" and email.art == "anfrage"
    assert email.betreff == f"Suche Psychotherapieplätze - Ref: A{anfrage_id}"
    assert email.empfaenger_email == therapist.email
    for patient in Patient.select():
        text = email.inhalt.inhalt_text
        assert patient.nachname not in text and patient.email not in text
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    assert (anfrage.email_id, anfrage.gesendet_datum) == (email.id, NOW)
    assert OutboxItem.get(OutboxItem.task == "send_email").payload == {"email_id": email.id}
    with pytest.raises(OperationError) as error:
        send_anfrage(anfrage_id, now=NOW)
    assert error.value.code == "ALREADY_SENT"
    assert Email.select().count() == 1


def test_a_phone_only_therapist_gets_a_call_in_the_phone_window(clean_db):
    therapist = f.therapist(email=None, telefonische_erreichbarkeit={"Mi": ["8:00-9:00"]})
    _, anfrage_id = bundle(therapist)
    result = send_anfrage(anfrage_id, now=NOW)
    call = Telefonanruf.get_by_id(result["phone_call_id"])
    assert (call.geplantes_datum, call.geplante_zeit, call.dauer_minuten) == (
        dt.date(2026, 12, 2),
        "08:00",
        5,
    )
    assert call.therapeutenanfrage_id == anfrage_id and Email.select().count() == 0


def test_weekly_rule_refuses_a_second_inquiry_to_the_same_address(clean_db):
    first = f.therapist(email="Praxis@Beispiel.de")
    second = f.therapist(email=" praxis@beispiel.de")
    _, a1 = bundle(first)
    send_anfrage(a1, now=NOW)
    record_response(
        a1,
        {
            row.patient_id: "abgelehnt_Kapazitaet"
            for row in TherapeutAnfragePatient.select().where(
                TherapeutAnfragePatient.therapeutenanfrage == a1
            )
        },
        now=NOW,
    )
    Therapist.update(naechster_kontakt_moeglich=None).execute()  # override cooling for the test
    a2 = Therapeutenanfrage.create(therapist=second, anfragegroesse=1).id
    line = TherapeutAnfragePatient.get()
    TherapeutAnfragePatient.create(
        therapeutenanfrage=a2,
        platzsuche=line.platzsuche_id,
        patient=line.patient_id,
        position_in_anfrage=1,
    )
    with pytest.raises(OperationError) as error:
        send_anfrage(a2, now=NOW + 6 * DAY + dt.timedelta(hours=23))
    assert error.value.code == "RATE_LIMITED"
    assert error.value.details["retry_at"] == (NOW + 7 * DAY).isoformat()
    assert Therapeutenanfrage.get_by_id(a2).gesendet_datum is None
    assert send_anfrage(a2, now=NOW + 7 * DAY)["channel"] == "email"


def test_weekly_rule_holds_when_two_workers_send_to_one_practice_at_once(clean_db, migrated):
    shared = "gemeinsam@praxis.example"
    anfragen = []
    for therapist in (f.therapist(email=shared), f.therapist(email=shared.upper())):
        search = f.search()
        anfrage = Therapeutenanfrage.create(therapist=therapist, anfragegroesse=1)
        TherapeutAnfragePatient.create(
            therapeutenanfrage=anfrage,
            platzsuche=search,
            patient=search.patient_id,
            position_in_anfrage=1,
        )
        anfragen.append(anfrage.id)
    outcomes = in_two_processes([(work.send, (migrated, NOW, a)) for a in anfragen])
    assert sorted(outcomes) == ["RATE_LIMITED", "email"]
    assert Email.select().count() == 1


def test_only_lines_still_pending_are_presented(clean_db):
    therapist, anfrage_id = bundle(searches=2)
    lines = list(Therapeutenanfrage.get_by_id(anfrage_id).zeilen)
    other = f.therapist()
    for line in lines:
        update_platzsuche(line.platzsuche_id, vermittelter_therapeut_id=other.id)
    with pytest.raises(OperationError) as error:
        send_anfrage(anfrage_id, now=NOW)
    assert error.value.code == "NO_ELIGIBLE_PATIENTS"


def sent_by_email(now=NOW):
    therapist, anfrage_id = bundle()
    send_anfrage(anfrage_id, now=now)
    return therapist, anfrage_id


def test_follow_up_call_after_seven_full_days_and_only_once(clean_db, mode):
    mode("call")
    _, anfrage_id = sent_by_email()
    assert run_follow_up(NOW + 7 * DAY - dt.timedelta(minutes=1)) == {
        "calls": [],
        "reminders": [],
        "skipped": [],
    }
    done = run_follow_up(NOW + 7 * DAY)
    assert len(done["calls"]) == 1
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    assert anfrage.phone_call_id == done["calls"][0] and anfrage.erinnerung_gesendet_datum
    call = Telefonanruf.get_by_id(anfrage.phone_call_id)
    assert call.geplantes_datum > (NOW + 7 * DAY).date() and call.status == "geplant"
    assert run_follow_up(NOW + 8 * DAY)["calls"] == []


def test_follow_up_reminder_mode(clean_db, mode):
    mode("reminder")
    _, anfrage_id = sent_by_email()
    done = run_follow_up(NOW + 7 * DAY)
    reminder = Email.get_by_id(done["reminders"][0])
    assert reminder.art == "erinnerung"
    assert reminder.betreff == f"Erinnerung: Therapieanfrage - Ref: A{anfrage_id}"
    assert "vor 7 Tagen" in reminder.inhalt.inhalt_text
    assert run_follow_up(NOW + 14 * DAY)["reminders"] == []


def test_a_reminder_for_an_anfrage_without_open_patients_is_skipped_not_fatal(clean_db, mode):
    """Found by the simulator: all patients placed elsewhere stopped the whole day's run."""
    mode("reminder")
    _, emptied = sent_by_email()
    TherapeutAnfragePatient.update(status="anderweitig_vermittelt").where(
        TherapeutAnfragePatient.therapeutenanfrage == emptied
    ).execute()
    _, other = sent_by_email()
    done = run_follow_up(NOW + 7 * DAY)
    assert done["skipped"] == [{"anfrage_id": emptied, "reason": "NO_ELIGIBLE_PATIENTS"}]
    assert [Email.get_by_id(e).therapeutenanfrage_id for e in done["reminders"]] == [other]
    assert Therapeutenanfrage.get_by_id(emptied).reminder_email_id is None


def test_follow_up_reminder_then_call(clean_db, mode):
    mode("reminder_then_call")
    _, anfrage_id = sent_by_email()
    assert len(run_follow_up(NOW + 7 * DAY)["reminders"]) == 1
    assert run_follow_up(NOW + 13 * DAY) == {"calls": [], "reminders": [], "skipped": []}
    assert len(run_follow_up(NOW + 14 * DAY)["calls"]) == 1
    assert run_follow_up(NOW + 20 * DAY)["calls"] == []


def test_call_outcomes_go_through_the_response_operation(clean_db):
    therapist = f.therapist(email=None)
    _, anfrage_id = bundle(therapist)
    call_id = send_anfrage(anfrage_id, now=NOW)["phone_call_id"]
    failed = set_call_status(call_id, "fehlgeschlagen", ergebnis="Mailbox", now=NOW)
    assert failed["response"] is None
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich is None
    assert Therapist.get_by_id(therapist.id).letzter_kontakt_telefon is None  # not reached
    with pytest.raises(OperationError) as error:
        set_call_status(call_id, "abgeschlossen")
    assert error.value.code == "INVALID_STATE"
    new_call = reschedule(call_id, now=NOW)
    assert new_call.status == "geplant" and new_call.id != call_id
    with pytest.raises(OperationError) as error:  # a double click plans one call
        reschedule(call_id, now=NOW)
    assert error.value.code == "ALREADY_PLANNED"
    patients = [row.patient_id for row in Therapeutenanfrage.get_by_id(anfrage_id).zeilen]
    reached = set_call_status(
        new_call.id,
        "abgeschlossen",
        ergebnis="erreicht",
        responses={p: "angenommen" for p in patients},
        now=NOW,
    )
    assert reached["response"]["antworttyp"] == "vollstaendige_Annahme"
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich == dt.date(2026, 12, 28)
    assert Therapist.get_by_id(therapist.id).letzter_kontakt_telefon == NOW.date()
    with pytest.raises(OperationError) as error:
        set_call_status(new_call.id, "vergessen")
    assert error.value.code == "INVALID_STATUS"


def test_conflict_notice_offers_alternatives_once(clean_db):
    first, second = f.therapist(), f.therapist()
    f.searches(4)
    a1 = create_anfrage(first.id, now=NOW).anfrage_id
    a2 = create_anfrage(second.id, now=NOW).anfrage_id
    send_anfrage(a1, now=NOW)
    send_anfrage(a2, now=NOW)
    lines = {row.patient_id for row in Therapeutenanfrage.get_by_id(a1).zeilen}
    record_response(a1, dict.fromkeys(lines, "angenommen"), now=NOW)
    f.searches(2, start_wait=30)  # new patients the second therapist could take instead
    record_response(a2, dict.fromkeys(lines, "angenommen"), now=NOW + DAY)
    notice = queue_conflict_notice(a2, sorted(lines), now=NOW + DAY)
    assert notice.art == "konflikt" and notice.empfaenger_email == second.email
    assert queue_conflict_notice(a2, sorted(lines), now=NOW + DAY).id == notice.id
    assert Email.select().where(Email.art == "konflikt").count() == 1
    new_patients = Platzsuche.select().where(Platzsuche.vermittelter_therapeut.is_null())
    assert all(f"{s.patient_id}" in notice.inhalt.inhalt_text for s in new_patients)
    thanks = queue_acceptance_confirmation(a1, now=NOW)
    assert thanks.art == "annahme_bestaetigung"


def test_placement_template_must_fit_the_therapists_contact_data(clean_db):
    from db.models import OutboxItem, Platzsuche

    by_phone = f.therapist(email=None, telefon="030 123")
    search = f.search()
    update_platzsuche(search.id, vermittelter_therapeut_id=by_phone.id)
    with pytest.raises(OperationError) as error:
        update_platzsuche(search.id, status="erfolgreich", email_template_type="email_contact")
    assert error.value.code == "THERAPIST_CONTACT_MISSING"
    assert Platzsuche.get_by_id(search.id).status == "aktiv"
    assert not OutboxItem.select().where(OutboxItem.task == "send_placement_email").exists()
    update_platzsuche(search.id, status="erfolgreich")  # default: the phone template
    item = OutboxItem.get(OutboxItem.task == "send_placement_email")
    assert item.payload["template"] == "phone_contact"
    unreachable = f.therapist(email=None, telefon=None)
    other = f.search()
    update_platzsuche(other.id, vermittelter_therapeut_id=unreachable.id)
    with pytest.raises(OperationError) as error:
        update_platzsuche(other.id, status="erfolgreich")
    assert error.value.code == "THERAPIST_CONTACT_MISSING"


def test_placement_email_moves_the_patient_into_therapy(clean_db):
    therapist = f.therapist(telefon="030 123")
    search = f.search()
    Patient.update(status="auf_der_Suche").execute()
    update_platzsuche(search.id, vermittelter_therapeut_id=therapist.id)
    update_platzsuche(search.id, status="erfolgreich")
    email = queue_placement_email(search.id, "email_contact")
    assert email.betreff == "Therapieplatz gefunden - bitte zeitnah bearbeiten"
    assert Patient.get_by_id(search.patient_id).status == "in_Therapie"
    assert queue_placement_email(search.id, "email_contact").id == email.id
