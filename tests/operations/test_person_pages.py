"""A person's page (issue 15.2): the record and one timeline of searches, bundles, emails,
replies, calls, notes, audit rows and placement steps, in local time, newest first, paged."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import Email, InboundMessage, Telefonanruf
from operations import person_edit, person_pages, placements
from operations.bundles import create_anfrage
from operations.errors import OperationError
from operations.responses import record_response
from operations.searches import update_platzsuche
from tests import factories as f

NOW = f.NOW  # 2026-11-30 08:00 UTC = 09:00 in Berlin


@pytest.fixture
def story(clean_db):
    return build_story()


def build_story():
    """One patient carried from search to a successful placement, with one of everything."""
    therapist = f.therapist(vorname="Erika", nachname="Muster", titel="Dr.")
    patient = f.patient(status="auf_der_Suche")
    search = f.search(patient_obj=patient)
    update_platzsuche(search.id, notiz="Rückruf erbeten", actor="jonas", now=NOW)
    created = create_anfrage(therapist.id, now=NOW)
    f.mark_sent(created.anfrage_id, NOW + dt.timedelta(hours=1))
    InboundMessage.create(
        provider="postmark",
        message_key="m1",
        raw_payload="{}",
        therapeutenanfrage=created.anfrage_id,
        status="verarbeitet",
        received_at=NOW + dt.timedelta(hours=2),
    )
    record_response(created.anfrage_id, {patient.id: "angenommen"}, now=NOW + dt.timedelta(hours=2))
    Email.create(
        patient=patient.id,
        art="vermittlung",
        idempotenz_schluessel=f"vermittlung:{search.id}",
        betreff="Ihr Therapieplatz",
        empfaenger_email="p@example.org",
        absender_email="team@example.org",
        status="Gesendet",
        gesendet_am=NOW + dt.timedelta(hours=3),
    )
    call = Telefonanruf.create(
        therapist=therapist.id,
        therapeutenanfrage=created.anfrage_id,
        geplantes_datum=dt.date(2026, 12, 1),
        geplante_zeit="08:05",
        dauer_minuten=5,
        status="abgebrochen",
        created_at=NOW + dt.timedelta(hours=1, minutes=5),
    )
    when = NOW + dt.timedelta(hours=2, minutes=1)  # save() stamps updated_at: set it after
    Telefonanruf.update(updated_at=when).where(Telefonanruf.id == call.id).execute()
    placements.record_placement_outcome(
        search.id, "stattgefunden", actor="erika", source="staff", now=NOW + dt.timedelta(days=2)
    )
    person_edit.edit_patient(
        patient.id, {"telefon": "030 999"}, actor="erika", now=NOW + dt.timedelta(days=3)
    )
    person_edit.block_therapist(
        therapist.id, "keine Kapazität mehr", actor="erika", now=NOW + dt.timedelta(days=4)
    )
    return patient, therapist, search, created.anfrage_id


def events(entries):
    return [(e["kind"], e["event"]) for e in entries]


def test_the_patient_timeline_tells_the_whole_story(story):
    patient, therapist, search, anfrage_id = story
    entries = person_pages.patient_timeline_entries(patient.id)
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    assert {e["kind"] for e in entries} == {
        "search",
        "anfrage",
        "reply",
        "email",
        "call",
        "note",
        "audit",
        "placement",
    }
    found = events(entries)
    for expected in [
        ("search", "search_opened"),
        ("anfrage", "line_added"),
        ("anfrage", "anfrage_sent"),
        ("reply", "answer"),
        ("reply", "inbound"),
        ("email", "email"),
        ("call", "call"),
        ("note", "note"),
        ("audit", "update_platzsuche"),
        ("audit", "record_placement_outcome"),
        ("audit", "edit_patient"),
        ("placement", "search_successful"),
    ]:
        assert expected in found, expected
    (answer,) = [e for e in entries if e["event"] == "answer"]
    assert (answer["anfrage_id"], answer["therapist"]) == (anfrage_id, "Dr. Erika Muster")
    assert answer["answer"] == "in_Sitzungen"  # what became of the acceptance
    (outcome,) = [e for e in entries if e["event"] == "record_placement_outcome"]
    assert outcome["details"] == {"outcome": "stattgefunden"} and outcome["actor"] == "erika"
    (edit,) = [e for e in entries if e["event"] == "edit_patient"]
    assert edit["details"] == {"fields": ["telefon"]}
    (mail,) = [e for e in entries if e["event"] == "email"]
    assert (mail["art"], mail["status"], mail["subject"]) == (
        "vermittlung",
        "Gesendet",
        "Ihr Therapieplatz",
    )
    # local time: the note written at 08:00 UTC reads 09:00 in Berlin
    (note,) = [e for e in entries if e["event"] == "note" and e["author"] == "jonas"]
    assert note["text"] == "Rückruf erbeten" and note["where_id"] == search.id
    assert note["zeit"] == "30.11.2026 09:00" and note["at"] == NOW
    # the therapist's own status change is not the patient's
    assert ("audit", "set_therapist_status") not in found


def test_the_therapist_timeline(story):
    patient, therapist, search, anfrage_id = story
    entries = person_pages.therapist_timeline_entries(therapist.id)
    found = events(entries)
    for expected in [
        ("anfrage", "anfrage_created"),
        ("anfrage", "anfrage_sent"),
        ("reply", "anfrage_answered"),
        ("reply", "inbound"),
        ("placement", "placement_successful"),
        ("audit", "record_placement_outcome"),  # the placement step naming it
        ("audit", "set_therapist_status"),
        ("audit", "create_anfrage"),
        ("audit", "record_response"),
        ("note", "note"),
        ("call", "call"),
    ]:
        assert expected in found, expected
    assert ("audit", "edit_patient") not in found  # the patient's edit is not the therapist's
    (status,) = [e for e in entries if e["event"] == "set_therapist_status"]
    assert status["details"] == {"before": "aktiv", "after": "gesperrt"}
    assert status["reason"] == "keine Kapazität mehr"
    (answered,) = [e for e in entries if e["event"] == "anfrage_answered"]
    assert (answered["answer_type"], answered["accepted"]) == ("vollstaendige_Annahme", 1)
    # audit details the timeline does not show are not even read
    (created,) = [e for e in entries if e["event"] == "create_anfrage"]
    assert created["details"] == {}
    assert entries[0]["zeit"] == person_pages.local_text(NOW + dt.timedelta(days=4))


def test_pages_and_their_refusals(story):
    patient, therapist, search, _ = story
    page = person_pages.patient_page(patient.id, page_size=3)
    total = page["timeline"]["gesamt"]
    assert total > 6 and page["suche_id"] == search.id
    assert page["timeline"]["seiten"] == -(-total // 3) and len(page["timeline"]["eintraege"]) == 3
    assert page["entries"] == person_pages.patient_timeline_entries(patient.id)
    last = person_pages.patient_timeline(patient.id, page=99, page_size=3)
    assert last["seite"] == last["seiten"] and 1 <= len(last["eintraege"]) <= 3
    all_entries = person_pages.patient_timeline_entries(patient.id)
    second = person_pages.patient_timeline(patient.id, page=2, page_size=3)
    assert second["eintraege"] == all_entries[3:6]
    assert person_pages.therapist_page(therapist.id)["name"] == "Dr. Erika Muster"
    for bad in (0, -1, "2", True):
        with pytest.raises(OperationError) as caught:
            person_pages.patient_timeline(patient.id, page=bad)
        assert caught.value.code == "INVALID_PAGE"
    with pytest.raises(OperationError) as caught:
        person_pages.therapist_timeline(therapist.id, page_size=500)
    assert caught.value.code == "INVALID_PAGE"
    with pytest.raises(OperationError) as caught:
        person_pages.patient_page(patient.id + 999)
    assert caught.value.code == "PATIENT_NOT_FOUND"
    with pytest.raises(OperationError) as caught:
        person_pages.therapist_timeline(therapist.id + 999)
    assert caught.value.code == "THERAPIST_NOT_FOUND"


def test_a_new_person_has_a_short_timeline(clean_db):
    patient = f.patient()
    assert person_pages.patient_page(patient.id)["timeline"]["gesamt"] == 0
    assert person_pages.patient_page(patient.id)["suche_id"] is None
