"""Recording answers, outcomes, closures, conflicts; search lifecycle; cooling override."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import (
    AuditLog,
    OutboxItem,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from operations import OperationError
from operations.bundles import create_anfrage
from operations.cooling import override_cooling
from operations.responses import (
    close_without_response,
    list_conflicts,
    record_patient_outcome,
    record_response,
)
from operations.searches import (
    create_platzsuche,
    exclude_therapist,
    remove_exclusion,
    update_platzsuche,
)
from tests import factories as f

NOW = f.NOW
LATER = NOW + dt.timedelta(hours=3)


def sent_bundle(therapist, now=NOW):
    created = create_anfrage(therapist.id, now=now)
    f.mark_sent(created.anfrage_id, now)
    return Therapeutenanfrage.get_by_id(created.anfrage_id), [
        p.patient_id for p in created.selection.patients
    ]


def snapshot_of_rows():
    return (
        [
            tuple(r.__data__.items())
            for r in Therapeutenanfrage.select().order_by(Therapeutenanfrage.id)
        ],
        [
            tuple(r.__data__.items())
            for r in TherapeutAnfragePatient.select().order_by(TherapeutAnfragePatient.id)
        ],
        [tuple(r.__data__.items()) for r in Platzsuche.select().order_by(Platzsuche.id)],
        [tuple(r.__data__.items()) for r in Therapist.select().order_by(Therapist.id)],
        OutboxItem.select().count(),
    )


@pytest.fixture
def bundle(clean_db):
    therapist = f.therapist()
    f.searches(3)
    anfrage, patients = sent_bundle(therapist)
    return therapist, anfrage, patients


@pytest.mark.parametrize(
    "responses,code",
    [
        ({"x": "angenommen"}, "INVALID_OUTCOME"),
        (None, "MISSING_RESPONSES"),
        ("first-only", "MISSING_RESPONSES"),
        ("all+stranger", "UNKNOWN_PATIENTS"),
        ("in_Sitzungen", "INVALID_OUTCOME"),
    ],
)
def test_invalid_responses_change_nothing(bundle, responses, code):
    _, anfrage, patients = bundle
    if responses == "first-only":
        responses = {patients[0]: "angenommen"}
    elif responses == "all+stranger":
        responses = {**dict.fromkeys(patients, "abgelehnt_Kapazitaet"), 999_999: "angenommen"}
    elif responses == "in_Sitzungen":
        responses = dict.fromkeys(patients, "in_Sitzungen")
    before = snapshot_of_rows()
    with pytest.raises(OperationError) as error:
        record_response(anfrage.id, responses, now=LATER)
    assert error.value.code == code
    assert snapshot_of_rows() == before


def test_unknown_and_unsent_anfragen_are_refused(clean_db):
    therapist = f.therapist()
    f.searches(1)
    created = create_anfrage(therapist.id, now=NOW)
    with pytest.raises(OperationError) as error:
        record_response(987_654, {1: "angenommen"})
    assert (error.value.code, error.value.status) == ("ANFRAGE_NOT_FOUND", 404)
    patient = created.selection.patients[0].patient_id
    with pytest.raises(OperationError) as error:
        record_response(created.anfrage_id, {patient: "angenommen"})
    assert error.value.code == "ANFRAGE_NOT_SENT"


def test_partial_acceptance_places_excludes_cools_and_cancels_calls(bundle):
    therapist, anfrage, (first, second, third) = bundle
    call = Telefonanruf.create(
        therapist=therapist,
        therapeutenanfrage=anfrage,
        geplantes_datum=dt.date(2026, 12, 2),
        geplante_zeit="09:00",
        dauer_minuten=5,
    )
    result = record_response(
        anfrage.id,
        {
            first: "angenommen",
            str(second): "abgelehnt_nicht_geeignet",
            third: "abgelehnt_Kapazitaet",
        },
        notizen="Rückruf am Dienstag",
        actor="tom",
        now=LATER,
    )
    assert result.antworttyp == "teilweise_Annahme"
    assert (result.angenommen_anzahl, result.abgelehnt_anzahl, result.keine_antwort_anzahl) == (
        1,
        2,
        0,
    )
    assert result.cooling_until == dt.date(2026, 12, 28)  # 28 days after the local answer date
    assert result.accepted == [
        {"patient_id": first, "platzsuche_id": result.accepted[0]["platzsuche_id"], "placed": True}
    ]
    anfrage = Therapeutenanfrage.get_by_id(anfrage.id)
    assert anfrage.antwort_datum == LATER and "Rückruf am Dienstag" in anfrage.notizen
    lines = {r.patient_id: r for r in anfrage.zeilen}
    assert lines[first].status == "angenommen" and lines[first].antwortergebnis == "angenommen"
    assert (lines[second].status, lines[second].antwortergebnis) == (
        "abgelehnt",
        "abgelehnt_nicht_geeignet",
    )
    placed = Platzsuche.get(Platzsuche.patient == first)
    assert placed.vermittelter_therapeut_id == therapist.id and placed.status == "aktiv"
    unsuitable = Platzsuche.get(Platzsuche.patient == second)
    assert [e["id"] for e in unsuitable.ausgeschlossene_therapeuten] == [therapist.id]
    assert "abgelehnt_nicht_geeignet" in unsuitable.ausgeschlossene_therapeuten[0]["reason"]
    assert Platzsuche.get(Platzsuche.patient == third).ausgeschlossene_therapeuten == []
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich == dt.date(2026, 12, 28)
    assert Telefonanruf.get_by_id(call.id).status == "abgebrochen"
    assert AuditLog.get(AuditLog.action == "record_response").actor == "tom"
    with pytest.raises(OperationError) as error:
        record_response(anfrage.id, dict.fromkeys((first, second, third), "angenommen"))
    assert (error.value.code, error.value.status) == ("ALREADY_ANSWERED", 409)


def test_first_acceptance_wins_and_a_later_one_is_a_conflict_with_a_notice(clean_db):
    first_t, second_t = f.therapist(), f.therapist(plz="10117")
    f.searches(3)
    a1, patients = sent_bundle(first_t)
    a2, patients2 = sent_bundle(second_t)
    assert set(patients) == set(patients2)  # the same three, offered in parallel
    shared = patients[0]
    record_response(
        a1.id,
        {p: "angenommen" if p == shared else "abgelehnt_sonstiges" for p in patients},
        now=LATER,
    )
    line = TherapeutAnfragePatient.get(
        (TherapeutAnfragePatient.therapeutenanfrage == a2.id)
        & (TherapeutAnfragePatient.patient == shared)
    )
    assert line.status == "anderweitig_vermittelt"
    # the other therapist answers later; the placed patient's entry is optional but given
    result = record_response(
        a2.id, dict.fromkeys(patients2, "angenommen"), now=LATER + dt.timedelta(hours=1)
    )
    assert [c["patient_id"] for c in result.conflicts] == [shared]
    assert result.antworttyp == "vollstaendige_Annahme"
    search = Platzsuche.get(Platzsuche.patient == shared)
    assert search.vermittelter_therapeut_id == first_t.id
    notice = OutboxItem.get(OutboxItem.task == "send_conflict_notice")
    assert notice.payload == {"anfrage_id": a2.id, "patient_ids": [shared]}
    assert notice.dedupe_key == f"konflikt:{a2.id}"
    thanks = {
        o.payload["anfrage_id"]
        for o in OutboxItem.select().where(OutboxItem.task == "send_acceptance_confirmation")
    }
    assert thanks == {a1.id, a2.id}  # both placed at least one patient
    conflicts = list_conflicts()
    assert len(conflicts) == 1 and conflicts[0]["patient_id"] == shared
    assert conflicts[0]["winner"] == first_t.id and conflicts[0]["conflict_count"] == 1
    assert [a["therapist_id"] for a in conflicts[0]["acceptances"]] == [first_t.id, second_t.id]
    line = TherapeutAnfragePatient.get_by_id(line.id)
    assert (line.status, line.antwortergebnis) == ("anderweitig_vermittelt", "angenommen")


def test_close_without_response_then_a_late_answer_replaces_it(bundle):
    therapist, anfrage, patients = bundle
    result = close_without_response(anfrage.id, now=LATER)
    assert result["antworttyp"] == "keine_Antwort"
    anfrage = Therapeutenanfrage.get_by_id(anfrage.id)
    assert anfrage.keine_antwort_anzahl == 3
    assert {r.status for r in anfrage.zeilen} == {"keine_antwort"}
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich is None  # no cooling
    with pytest.raises(OperationError) as error:
        close_without_response(anfrage.id)
    assert error.value.code == "INVALID_STATE"
    late = record_response(anfrage.id, dict.fromkeys(patients, "abgelehnt_Kapazitaet"), now=LATER)
    assert late.antworttyp == "vollstaendige_Ablehnung" and late.cooling_until is not None
    assert {r.status for r in Therapeutenanfrage.get_by_id(anfrage.id).zeilen} == {"abgelehnt"}


def test_post_acceptance_outcomes(bundle):
    therapist, anfrage, patients = bundle
    record_response(anfrage.id, {p: "angenommen" for p in patients}, now=LATER)
    with pytest.raises(OperationError) as error:
        record_patient_outcome(anfrage.id, patients[0], "angenommen")
    assert error.value.code == "INVALID_OUTCOME"
    record_patient_outcome(anfrage.id, patients[0], "in_Sitzungen")
    result = record_patient_outcome(anfrage.id, patients[1], "nicht_erschienen", now=LATER)
    assert result["placement_cleared"] is True
    search = Platzsuche.get(Platzsuche.patient == patients[1])
    assert search.vermittelter_therapeut_id is None
    assert search.ausgeschlossene_therapeuten[0]["reason"] == "nicht_erschienen"
    assert (
        Platzsuche.get(Platzsuche.patient == patients[0]).vermittelter_therapeut_id == therapist.id
    )
    rows = {
        r.patient_id: r.antwortergebnis for r in Therapeutenanfrage.get_by_id(anfrage.id).zeilen
    }
    assert rows[patients[0]] == "in_Sitzungen" and rows[patients[1]] == "nicht_erschienen"


def test_post_acceptance_outcome_needs_an_accepted_line(bundle):
    _, anfrage, patients = bundle
    record_response(anfrage.id, dict.fromkeys(patients, "abgelehnt_Kapazitaet"), now=LATER)
    with pytest.raises(OperationError) as error:
        record_patient_outcome(anfrage.id, patients[0], "in_Sitzungen")
    assert (error.value.code, error.value.status) == ("INVALID_STATE", 409)


def test_opening_a_search_validates_the_patient_in_the_documented_order(clean_db):
    patient = f.patient(symptome=[], krankenkasse="")
    with pytest.raises(OperationError) as error:
        create_platzsuche(patient.id)
    assert (error.value.code, error.value.details["field"]) == ("PATIENT_DATA_INVALID", "symptome")
    ready = f.patient()
    search = create_platzsuche(ready.id, notizen="Erstgespräch gewünscht", actor="eva")
    assert search.status == "aktiv" and "(eva)] Erstgespräch gewünscht" in search.notizen
    with pytest.raises(OperationError) as error:
        create_platzsuche(ready.id)
    assert (error.value.code, error.value.details["search_id"]) == (
        "ACTIVE_SEARCH_EXISTS",
        search.id,
    )
    with pytest.raises(OperationError) as error:
        create_platzsuche(123_456)
    assert error.value.status == 404
    incomplete = f.patient(erfahrung_mit_psychotherapie=True)
    with pytest.raises(OperationError) as error:
        create_platzsuche(incomplete.id)
    assert error.value.details["field"] == "letzte_sitzung_vorherige_psychotherapie"


def test_search_status_transitions_and_assignment_rules(clean_db):
    therapist, other = f.therapist(), f.therapist()
    search = f.search()
    with pytest.raises(OperationError) as error:
        update_platzsuche(search.id, status="erfolgreich")
    assert error.value.code == "THERAPIST_REQUIRED"
    update_platzsuche(search.id, status="pausiert")
    with pytest.raises(OperationError) as error:
        update_platzsuche(search.id, status="erfolgreich")
    assert error.value.code == "INVALID_TRANSITION"
    with pytest.raises(OperationError) as error:
        update_platzsuche(search.id, status="gelöscht")
    assert error.value.code == "INVALID_STATUS"
    update_platzsuche(search.id, status="aktiv")
    update_platzsuche(search.id, vermittelter_therapeut_id=therapist.id)
    with pytest.raises(OperationError) as error:
        update_platzsuche(
            search.id, status="erfolgreich", email_template_type="meeting_confirmation_email"
        )
    assert error.value.code == "MEETING_DETAILS_REQUIRED"
    done = update_platzsuche(search.id, status="erfolgreich", now=LATER)
    assert done.erfolgreiche_vermittlung_datum == LATER
    assert (
        OutboxItem.get(OutboxItem.task == "send_placement_email").payload["template"]
        == "email_contact"
    )
    with pytest.raises(OperationError) as error:
        update_platzsuche(search.id, vermittelter_therapeut_id=other.id)
    assert error.value.code == "THERAPIST_LOCKED"
    with pytest.raises(OperationError) as error:
        update_platzsuche(search.id, status="aktiv")
    assert error.value.code == "INVALID_TRANSITION"
    with pytest.raises(OperationError) as error:
        update_platzsuche(search.id, ausgeschlossene_therapeuten=["7"])
    assert error.value.code == "INVALID_EXCLUSION_LIST"


def test_manual_assignment_takes_the_patient_out_of_other_pending_bundles(clean_db):
    first, second = f.therapist(), f.therapist()
    f.searches(2)
    anfrage, patients = sent_bundle(first)
    search = Platzsuche.get(Platzsuche.patient == patients[0])
    update_platzsuche(search.id, vermittelter_therapeut_id=second.id, actor="eva")
    line = TherapeutAnfragePatient.get(
        (TherapeutAnfragePatient.therapeutenanfrage == anfrage.id)
        & (TherapeutAnfragePatient.platzsuche == search.id)
    )
    assert line.status == "anderweitig_vermittelt"
    # the bundle's answer may leave the placed patient out
    result = record_response(anfrage.id, {patients[1]: "abgelehnt_Kapazitaet"}, now=LATER)
    assert result.keine_antwort_anzahl == 1


def test_exclusions_with_reason(clean_db):
    therapist = f.therapist()
    search = f.search(ausgeschlossene_therapeuten=[4711])
    with pytest.raises(OperationError) as error:
        exclude_therapist(search.id, therapist.id, "  ")
    assert error.value.code == "REASON_REQUIRED"
    assert exclude_therapist(search.id, therapist.id, "Patientin wünscht es") is True
    assert exclude_therapist(search.id, therapist.id, "doppelt") is False
    entries = Platzsuche.get_by_id(search.id).ausgeschlossene_therapeuten
    assert entries[0] == 4711 and entries[1]["id"] == therapist.id
    assert remove_exclusion(search.id, 4711, "Irrtum") is True
    assert [e["id"] for e in Platzsuche.get_by_id(search.id).ausgeschlossene_therapeuten] == [
        therapist.id
    ]


def test_cooling_override_needs_a_reason_and_is_logged(clean_db):
    therapist = f.therapist(naechster_kontakt_moeglich=dt.date(2027, 1, 1))
    with pytest.raises(OperationError) as error:
        override_cooling(therapist.id, None, " ")
    assert error.value.code == "REASON_REQUIRED"
    with pytest.raises(OperationError) as error:
        override_cooling(999_999, None, "x")
    assert error.value.code == "THERAPIST_NOT_FOUND"
    override_cooling(therapist.id, None, "Meinungsänderung: hat Platz frei", actor="eva", now=LATER)
    changed = Therapist.get_by_id(therapist.id)
    assert changed.naechster_kontakt_moeglich is None
    assert "Meinungsänderung: hat Platz frei" in changed.notizen
    log = AuditLog.get(AuditLog.action == "override_cooling")
    assert (log.actor, log.details["before"]) == ("eva", "2027-01-01")


def test_a_partial_answer_records_some_patients_and_leaves_the_others_pending(bundle):
    """docs/domain.md §0 point 14: acceptances recorded, the others stay open for follow-up."""
    therapist, anfrage, (first, second, third) = bundle
    call = Telefonanruf.create(
        therapist=therapist,
        therapeutenanfrage=anfrage,
        geplantes_datum=dt.date(2026, 12, 2),
        geplante_zeit="09:00",
        dauer_minuten=5,
    )
    result = record_response(anfrage.id, {first: "angenommen"}, now=LATER, partial=True)
    assert (result.antworttyp, result.still_open, result.angenommen_anzahl) == ("offen", 2, 1)
    stored = Therapeutenanfrage.get_by_id(anfrage.id)
    assert stored.antwort_datum is None and stored.antworttyp is None  # still pending
    assert Platzsuche.get(Platzsuche.patient == first).vermittelter_therapeut_id == therapist.id
    assert Telefonanruf.get_by_id(call.id).status == "geplant"  # the follow-up stays
    first_keys = {o.dedupe_key for o in OutboxItem.select()}

    with pytest.raises(OperationError) as error:  # a decided patient cannot be answered again
        record_response(anfrage.id, {first: "abgelehnt_Kapazitaet"}, now=LATER, partial=True)
    assert error.value.code == "ALREADY_ANSWERED"
    with pytest.raises(OperationError) as error:  # a full answer needs the open ones
        record_response(anfrage.id, {second: "angenommen"}, now=LATER)
    assert error.value.code == "MISSING_RESPONSES"

    final = record_response(
        anfrage.id, {second: "angenommen", third: "abgelehnt_Kapazitaet"}, now=LATER
    )
    assert final.antworttyp == "teilweise_Annahme"
    assert (final.angenommen_anzahl, final.abgelehnt_anzahl, final.keine_antwort_anzahl) == (
        2,
        1,
        0,
    )
    assert Therapeutenanfrage.get_by_id(anfrage.id).antwort_datum == LATER
    assert Telefonanruf.get_by_id(call.id).status == "abgebrochen"
    new_keys = {o.dedupe_key for o in OutboxItem.select()} - first_keys
    assert any(k.startswith("annahme_bestaetigung:") for k in new_keys)  # its own thanks


def test_a_partial_answer_with_nothing_in_it_is_refused(bundle):
    _, anfrage, _ = bundle
    before = snapshot_of_rows()
    with pytest.raises(OperationError) as error:
        record_response(anfrage.id, {}, now=LATER, partial=True)
    assert error.value.code == "MISSING_RESPONSES"
    assert snapshot_of_rows() == before


def test_placed_elsewhere_touches_only_the_search_s_waiting_lines_in_pending_anfragen(clean_db):
    from operations.responses import mark_placed_elsewhere

    search, other = f.search(), f.search()

    def line(answered: bool, platzsuche, status: str = "anstehend"):
        anfrage = Therapeutenanfrage.create(
            therapist=f.therapist(),
            anfragegroesse=1,
            antwort_datum=NOW if answered else None,
            antworttyp="vollstaendige_Ablehnung" if answered else None,
        )
        return TherapeutAnfragePatient.create(
            therapeutenanfrage=anfrage,
            platzsuche=platzsuche,
            patient=platzsuche.patient_id,
            position_in_anfrage=1,
            status=status,
        )

    pending, answered, accepted_in = line(False, search), line(True, search), line(False, search)
    others = [line(False, other), line(False, search, status="angenommen")]
    changed = mark_placed_elsewhere(search.id, except_anfrage_id=accepted_in.therapeutenanfrage_id)
    status = {li.id: li.status for li in TherapeutAnfragePatient.select()}
    assert changed == 1 and status[pending.id] == "anderweitig_vermittelt"
    assert [status[li.id] for li in (answered, accepted_in, *others)] == [
        "anstehend",
        "anstehend",
        "anstehend",
        "angenommen",
    ]
    assert mark_placed_elsewhere(search.id, except_anfrage_id=None) == 1  # accepted_in's too
