"""Staff corrections of patients and therapists (issue 15.2): the import's validation, one
audit row naming the staff member, and for every refusal its outcome code and no write."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import AuditLog, Patient, PlzCentroid, Therapist
from operations import people, person_edit
from operations.errors import OperationError
from operations.intake import local_today
from operations.privacy import erase_patient
from psymatch.domain import validation
from tests import factories as f


def snapshot():
    return [
        [tuple(r.__data__.items()) for r in model.select().order_by(model.id)]
        for model in (Patient, Therapist, AuditLog)
    ]


def refused(code, call, field=None):
    before = snapshot()
    with pytest.raises(OperationError) as caught:
        call()
    assert caught.value.code == code, caught.value
    if field is not None:
        assert caught.value.details.get("field", "").split(".")[0] == field
    assert snapshot() == before, "a refused edit wrote something"
    return caught.value


def audit_rows(action):
    return list(AuditLog.select().where(AuditLog.action == action).order_by(AuditLog.id))


def test_patient_edit_changes_fields_refreshes_the_index_and_audits_the_actor(clean_db):
    patient = f.patient(vorname="Otto", nachname="Alt", telefon="030 1111")
    people.refresh_index([patient.id])
    result = person_edit.edit_patient(
        patient.id,
        {"nachname": "Neu", "telefon": "+49 30 2222", "geburtsdatum": "02.03.1985"},
        actor="erika",
        reason="Anruf der Patientin",
    )
    assert result["changed"] == ["geburtsdatum", "nachname", "telefon"]
    stored = Patient.get_by_id(patient.id)
    assert (stored.nachname, stored.telefon) == ("Neu", "+49 30 2222")
    assert stored.geburtsdatum == dt.date(1985, 3, 2)
    found = [p["id"] for p in people.find_people("Otto Neu") if p["art"] == "patient"]
    assert found == [patient.id]
    assert people.find_people("Alt") == []
    assert [p["id"] for p in people.find_people("030 2222")] == [patient.id]
    (row,) = audit_rows("edit_patient")
    assert (row.actor, row.entity, row.entity_id) == ("erika", "patient", str(patient.id))
    assert row.details == {"fields": ["geburtsdatum", "nachname", "telefon"]}
    assert row.reason == "Anruf der Patientin"


def test_an_edit_that_changes_nothing_writes_nothing(clean_db):
    patient = f.patient(ort="Berlin")
    before = snapshot()
    result = person_edit.edit_patient(patient.id, {"ort": " Berlin "}, actor="erika")
    assert result["changed"] == []
    assert snapshot() == before


def test_a_new_plz_moves_the_patient_to_its_centroid(clean_db):
    patient = f.patient(plz="10117")
    person_edit.edit_patient(patient.id, {"plz": "80331"}, actor="erika")
    stored = Patient.get_by_id(patient.id)
    centroid = PlzCentroid.get_by_id("80331")
    assert (stored.plz, stored.geo_plz, stored.geo_quelle) == ("80331", "80331", "plz")
    assert stored.latitude == round(centroid.latitude, 2)


def test_optional_fields_can_be_cleared_required_ones_not(clean_db):
    patient = f.patient(hausarzt="Dr. Huber")
    person_edit.edit_patient(patient.id, {"hausarzt": ""}, actor="erika")
    assert Patient.get_by_id(patient.id).hausarzt is None
    refused(
        "FIELD_REQUIRED",
        lambda: person_edit.edit_patient(patient.id, {"nachname": " "}, actor="erika"),
        "nachname",
    )
    refused(
        "FIELD_REQUIRED",
        lambda: person_edit.edit_patient(patient.id, {"symptome": None}, actor="erika"),
        "symptome",
    )
    therapist = f.therapist()
    refused(
        "FIELD_REQUIRED",
        lambda: person_edit.edit_therapist(therapist.id, {"kassensitz": ""}, actor="erika"),
        "kassensitz",
    )


# (field, value) pairs the import refuses: the edit refuses them with FIELD_INVALID too
BAD_PATIENT_VALUES = [
    ("email", "kein-at-zeichen"),
    ("plz", "1011"),
    ("plz", "00000"),  # well formed, but no such PLZ
    ("geburtsdatum", "31.02.1990"),
    ("geburtsdatum", (dt.date.today() + dt.timedelta(days=3)).isoformat()),
    ("symptome", ["Gibt es nicht"]),
    ("anrede", "herr"),
    ("vorname", "x" * 101),
    ("zeitliche_verfuegbarkeit", "Mo 17:00-09:00"),
    ("raeumliche_verfuegbarkeit", "-5"),
]


@pytest.mark.parametrize(("field", "value"), BAD_PATIENT_VALUES)
def test_bad_values_are_refused_with_the_import_rules(clean_db, field, value):
    patient = f.patient()
    row = {
        "external_id": "X",
        "anrede": "Herr",
        "geschlecht": "männlich",
        "vorname": "A",
        "nachname": "B",
        "plz": "10115",
        field: value,
    }
    known = {p.plz for p in PlzCentroid.select(PlzCentroid.plz)}
    with pytest.raises(validation.RowError):  # the import refuses the same value
        validation.validate_patient(row, known, today=local_today())
    refused(
        "FIELD_INVALID",
        lambda: person_edit.edit_patient(patient.id, {field: value}, actor="erika"),
        field,
    )


def test_refusals_by_field_name_and_actor(clean_db):
    patient, therapist = f.patient(), f.therapist()
    edit = person_edit.edit_patient
    refused("NO_CHANGES", lambda: edit(patient.id, {}, actor="erika"))
    refused("UNKNOWN_FIELD", lambda: edit(patient.id, {"lieblingsfarbe": "rot"}, actor="e"))
    refused("FIELD_MAINTAINED", lambda: edit(patient.id, {"status": "offen"}, actor="e"), "status")
    refused("FIELD_MAINTAINED", lambda: edit(patient.id, {"latitude": 1.0}, actor="e"))
    refused("FIELD_NOT_EDITABLE", lambda: edit(patient.id, {"external_id": "N"}, actor="e"))
    refused("ACTOR_REQUIRED", lambda: edit(patient.id, {"ort": "Bonn"}, actor=" "))
    refused("ACTOR_REQUIRED", lambda: edit(patient.id, {"ort": "Bonn"}, actor="x" * 101))
    refused("PATIENT_NOT_FOUND", lambda: edit(patient.id + 999, {"ort": "Bonn"}, actor="e"))
    refused(
        "REASON_TOO_LONG", lambda: edit(patient.id, {"ort": "Bonn"}, actor="e", reason="x" * 1001)
    )
    tedit = person_edit.edit_therapist
    refused("FIELD_NOT_EDITABLE", lambda: tedit(therapist.id, {"status": "inaktiv"}, actor="e"))
    refused("FIELD_NOT_EDITABLE", lambda: tedit(therapist.id, {"sperrgrund": "x"}, actor="e"))
    refused("FIELD_MAINTAINED", lambda: tedit(therapist.id, {"notizen": "x"}, actor="e"))
    refused("THERAPIST_NOT_FOUND", lambda: tedit(therapist.id + 999, {"ort": "B"}, actor="e"))


def test_the_age_bounds_are_checked_against_the_stored_record(clean_db):
    therapist = f.therapist(alter_min=30)
    refused(
        "FIELD_INVALID",
        lambda: person_edit.edit_therapist(therapist.id, {"alter_max": 20}, actor="erika"),
        "alter_min",
    )
    person_edit.edit_therapist(therapist.id, {"alter_max": 60}, actor="erika")
    assert Therapist.get_by_id(therapist.id).alter_max == 60


def test_an_erased_patient_cannot_be_edited(clean_db):
    patient = f.patient()
    erase_patient(patient.id, "admin", "Löschantrag")
    refused(
        "PATIENT_ERASED",
        lambda: person_edit.edit_patient(patient.id, {"ort": "Bonn"}, actor="erika"),
    )


def test_therapist_preferences_flags_and_availability(clean_db):
    therapist = f.therapist()
    person_edit.edit_therapist(
        therapist.id,
        {
            "bevorzugte_symptome": ["Schlafstörungen", "Zwänge"],
            "alter_min": "18",
            "alter_max": 0,  # 0 means no limit, as in the import
            "geschlechtspraeferenz": "Weiblich",
            "arbeitszeiten": "Mo 08:00-12:00; Mi 14:00-18:00",
            "telefonische_erreichbarkeit": {"Di": ["08:00-09:00"]},
            "ueber_curavani_informiert": "ja",
        },
        actor="erika",
    )
    stored = Therapist.get_by_id(therapist.id)
    assert stored.bevorzugte_symptome == ["Schlafstörungen", "Zwänge"]
    assert (stored.alter_min, stored.alter_max, stored.geschlechtspraeferenz) == (
        18,
        None,
        "Weiblich",
    )
    assert set(stored.arbeitszeiten) == {"montag", "mittwoch"} and stored.ueber_curavani_informiert
    person_edit.set_potenziell_verfuegbar(therapist.id, True, "ab März zwei Plätze", actor="jonas")
    stored = Therapist.get_by_id(therapist.id)
    assert stored.potenziell_verfuegbar and stored.potenziell_verfuegbar_notizen.startswith("ab")
    (row,) = audit_rows("set_potenziell_verfuegbar")
    assert row.actor == "jonas" and row.entity_id == str(therapist.id)
    refused(
        "FIELD_INVALID",
        lambda: person_edit.set_potenziell_verfuegbar(therapist.id, "vielleicht", actor="j"),
        "potenziell_verfuegbar",
    )
    refused(
        "FIELD_INVALID",
        lambda: person_edit.set_potenziell_verfuegbar(therapist.id, None, actor="j"),
        "potenziell_verfuegbar",
    )


def test_a_therapist_email_edit_calls_the_email_hook(clean_db, monkeypatch):
    therapist = f.therapist(email="alt@example.org")
    calls = []
    monkeypatch.setattr(
        person_edit,
        "therapist_email_changed",
        lambda t, before, after, **kw: calls.append((t.id, before, after, kw["actor"])),
    )
    person_edit.edit_therapist(therapist.id, {"email": "neu@example.org"}, actor="erika")
    assert calls == [(therapist.id, "alt@example.org", "neu@example.org", "erika")]
    person_edit.edit_therapist(therapist.id, {"telefon": "030 1"}, actor="erika")
    assert len(calls) == 1


def test_block_deactivate_reactivate_with_reason(clean_db):
    therapist = f.therapist()
    person_edit.block_therapist(therapist.id, "beschwert sich über Anfragen", actor="erika")
    stored = Therapist.get_by_id(therapist.id)
    assert stored.status == "gesperrt" and stored.sperrgrund == "beschwert sich über Anfragen"
    assert stored.sperrdatum == local_today()
    assert "gesperrt: beschwert sich" in stored.notizen
    refused(
        "STATUS_UNCHANGED",
        lambda: person_edit.block_therapist(therapist.id, "nochmal", actor="erika"),
    )
    person_edit.deactivate_therapist(therapist.id, "Praxis geschlossen", actor="jonas")
    assert Therapist.get_by_id(therapist.id).status == "inaktiv"
    person_edit.reactivate_therapist(therapist.id, "Praxis wieder offen", actor="erika")
    stored = Therapist.get_by_id(therapist.id)
    assert (stored.status, stored.sperrgrund, stored.sperrdatum) == ("aktiv", None, None)
    rows = audit_rows("set_therapist_status")
    assert [(r.actor, r.details["before"], r.details["after"], r.reason) for r in rows] == [
        ("erika", "aktiv", "gesperrt", "beschwert sich über Anfragen"),
        ("jonas", "gesperrt", "inaktiv", "Praxis geschlossen"),
        ("erika", "inaktiv", "aktiv", "Praxis wieder offen"),
    ]


def test_block_with_a_given_date(clean_db):
    therapist = f.therapist()
    person_edit.block_therapist(therapist.id, "Grund", actor="erika", sperrdatum="01.10.2026")
    assert Therapist.get_by_id(therapist.id).sperrdatum == dt.date(2026, 10, 1)


def test_status_refusals(clean_db):
    therapist = f.therapist()
    tid = therapist.id
    status = person_edit.set_therapist_status
    refused("INVALID_STATUS", lambda: status(tid, "pausiert", "Grund", actor="erika"))
    refused("REASON_REQUIRED", lambda: status(tid, "gesperrt", "  ", actor="erika"))
    refused("REASON_TOO_LONG", lambda: status(tid, "gesperrt", "x" * 1001, actor="erika"))
    refused("ACTOR_REQUIRED", lambda: status(tid, "gesperrt", "Grund", actor=""))
    refused("THERAPIST_NOT_FOUND", lambda: status(tid + 99, "gesperrt", "Grund", actor="e"))
    refused("STATUS_UNCHANGED", lambda: status(tid, "aktiv", "Grund", actor="erika"))
    for bad in ("31.02.2026", "morgen", (dt.date.today() + dt.timedelta(days=5)).isoformat()):
        refused(
            "INVALID_DATE",
            lambda bad=bad: status(tid, "gesperrt", "Grund", actor="e", sperrdatum=bad),
        )
    refused(
        "INVALID_DATE",
        lambda: status(tid, "inaktiv", "Grund", actor="e", sperrdatum="01.10.2026"),
    )
