"""The database itself holds the domain's rules (CHECK, UNIQUE, foreign keys)."""

from __future__ import annotations

import datetime as dt

import peewee
import pytest

from db.models import (
    Email,
    Patient,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)


@pytest.fixture
def people(clean_db):
    therapist = Therapist.create(
        external_id="T-1", anrede="Herr", geschlecht="männlich", vorname="Max", nachname="Roth"
    )
    patient = Patient.create(
        external_id="P-1", anrede="Frau", geschlecht="weiblich", vorname="Eva", nachname="Lang"
    )
    return therapist, patient


def rejected(action):
    # PostgreSQL reports an over-long enum value as DataError before the CHECK runs
    with pytest.raises((peewee.IntegrityError, peewee.DataError)):
        with Patient._meta.database.atomic():
            action()


def test_at_most_one_aktiv_search_per_patient(people):
    _, patient = people
    Platzsuche.create(patient=patient)
    rejected(lambda: Platzsuche.create(patient=patient))
    Platzsuche.create(patient=patient, status="abgebrochen")
    Platzsuche.create(patient=patient, status="pausiert")
    assert Platzsuche.select().where(Platzsuche.patient == patient).count() == 3


@pytest.mark.parametrize(
    "model,field,value",
    [
        (Patient, "geschlecht", "maennlich"),
        (Patient, "status", "Offen"),
        (Patient, "verkehrsmittel", "Fahrrad"),
        (Patient, "bevorzugtes_therapieverfahren", "Psychoanalyse"),
        (Therapist, "status", "gelöscht"),
        (Therapist, "geschlechtspraeferenz", "egal"),
    ],
)
def test_enum_values_are_checked_by_the_database(people, model, field, value):
    record = people[0] if model is Therapist else people[1]
    rejected(lambda: model.update({field: value}).where(model.id == record.id).execute())


def test_external_ids_are_unique(people):
    rejected(
        lambda: Therapist.create(
            external_id="T-1", anrede="Frau", geschlecht="weiblich", vorname="A", nachname="B"
        )
    )


def test_plz_must_have_five_characters(people):
    _, patient = people
    rejected(lambda: Patient.update(plz="1011").where(Patient.id == patient.id).execute())


def test_bundle_lines_cascade_with_their_anfrage_and_are_unique(people):
    therapist, patient = people
    search = Platzsuche.create(patient=patient)
    anfrage = Therapeutenanfrage.create(therapist=therapist, anfragegroesse=1)
    TherapeutAnfragePatient.create(
        therapeutenanfrage=anfrage, platzsuche=search, patient=patient, position_in_anfrage=1
    )
    rejected(
        lambda: TherapeutAnfragePatient.create(
            therapeutenanfrage=anfrage, platzsuche=search, patient=patient, position_in_anfrage=2
        )
    )
    anfrage.delete_instance()
    assert TherapeutAnfragePatient.select().count() == 0


def test_a_patient_with_a_search_cannot_be_deleted(people):
    _, patient = people
    Platzsuche.create(patient=patient)
    rejected(lambda: patient.delete_instance())


def test_answered_anfrage_needs_a_response_type(people):
    therapist, _ = people
    rejected(
        lambda: Therapeutenanfrage.create(
            therapist=therapist, anfragegroesse=1, antwort_datum=dt.datetime(2026, 1, 1)
        )
    )
    rejected(lambda: Therapeutenanfrage.create(therapist=therapist, anfragegroesse=0))


def test_email_and_call_have_exactly_one_recipient(people):
    therapist, patient = people
    common = dict(
        art="anfrage", betreff="x", empfaenger_email="a@example.org", absender_email="b@example.org"
    )
    rejected(lambda: Email.create(idempotenz_schluessel="k1", **common))
    rejected(
        lambda: Email.create(
            idempotenz_schluessel="k2", therapist=therapist, patient=patient, **common
        )
    )
    Email.create(idempotenz_schluessel="k3", therapist=therapist, **common)
    rejected(lambda: Email.create(idempotenz_schluessel="k3", patient=patient, **common))
    call = dict(geplantes_datum=dt.date(2026, 12, 1), geplante_zeit="09:00", dauer_minuten=5)
    rejected(lambda: Telefonanruf.create(**call))
    Telefonanruf.create(therapist=therapist, **call)


def test_anfrage_email_link_is_a_foreign_key_set_null_on_delete(people):
    therapist, _ = people
    email = Email.create(
        idempotenz_schluessel="anfrage:1",
        therapist=therapist,
        art="anfrage",
        betreff="x",
        empfaenger_email="a@example.org",
        absender_email="b@example.org",
    )
    anfrage = Therapeutenanfrage.create(therapist=therapist, anfragegroesse=1, email=email)
    rejected(
        lambda: (
            Therapeutenanfrage.update(email=999_999)
            .where(Therapeutenanfrage.id == anfrage.id)
            .execute()
        )
    )
    email.delete_instance()
    assert Therapeutenanfrage.get_by_id(anfrage.id).email_id is None
