"""Person search (issue 15.2): patients by a keyed blind index of their sealed name, email
and phone, or by PLZ; therapists by plaintext name, email and PLZ."""

from __future__ import annotations

import pytest

from db import crypto
from db.models import AuditLog, Patient
from operations import people
from operations.errors import OperationError
from operations.maintenance import rotate_keys
from psymatch import settings
from psymatch.domain.people_search import name_tokens, normal_phone, query_terms
from tests import factories


@pytest.fixture
def keys():
    before = settings.get().ENCRYPTION_KEYS
    yield lambda *k: settings.override(ENCRYPTION_KEYS=",".join(k))
    settings.override(ENCRYPTION_KEYS=before)


def indexed_patient(**fields) -> Patient:
    patient = factories.patient(**fields)
    people.refresh_index([patient.id])
    return Patient.get_by_id(patient.id)


def ids(found, art="patient"):
    return [f["id"] for f in found if f["art"] == art]


def test_normalisation():
    assert name_tokens("Jürgen", "Müller-Lüdenscheidt") == ["juergen", "luedenscheidt", "mueller"]
    assert name_tokens("José Ñúñez") == ["jose", "nunez"]
    assert normal_phone("+49 30 123456") == normal_phone("030/123456") == "030123456"
    assert query_terms("10115") == ("plz", ["10115"])
    assert query_terms(" A@B.de ")[0] == "email"
    assert query_terms("030 123456")[0] == "tel"
    assert query_terms("Müller")[0] == "name"


def test_patients_are_found_by_name_email_phone_and_plz(clean_db):
    p = indexed_patient(
        vorname="Jürgen",
        nachname="Müller-Lüdenscheidt",
        email="J.M@Example.org",
        telefon="+49 (30) 1234567",
        plz="10117",
    )
    other = indexed_patient(vorname="Anna", nachname="Müller", plz="80331")
    assert p.suchindex and "Jürgen" not in p.suchindex and "mueller" not in p.suchindex
    words = p.suchindex.split()
    assert len(words) == 5 and all(len(w) == 32 and w.isalpha() for w in words)
    assert ids(people.find_people("mueller")) == [p.id, other.id]
    assert ids(people.find_people("Müller Jürgen")) == [p.id]
    assert ids(people.find_people("LÜDENSCHEIDT")) == [p.id]
    assert ids(people.find_people("j.m@example.org")) == [p.id]
    assert ids(people.find_people("030 1234567")) == [p.id]
    assert ids(people.find_people("80331")) == [other.id]
    assert ids(people.find_people("muell")) == []  # whole words only (a keyed hash)
    hit = people.find_people("Jürgen")[0]
    assert hit["name"] == "Jürgen Müller-Lüdenscheidt" and hit["email"] == "J.M@Example.org"


def test_therapists_are_found_by_name_email_and_plz(clean_db):
    t = factories.therapist(vorname="Erika", nachname="Schönberg", email="praxis@schoen.de")
    assert ids(people.find_people("schönberg"), "therapeut") == [t.id]
    assert ids(people.find_people("Erika Schön"), "therapeut") == [t.id]
    assert ids(people.find_people("önberg"), "therapeut") == []  # names from their start
    assert people.find_people("Sch%") == [] and people.find_people("_rika") == []
    assert ids(people.find_people("PRAXIS@schoen.de"), "therapeut") == [t.id]
    assert t.id in ids(people.find_people(t.plz), "therapeut")
    assert people.find_people("nobody-here") == []


def test_a_stale_index_names_nobody_who_does_not_match(clean_db):
    p = indexed_patient(vorname="Otto", nachname="Alt")
    Patient.update(nachname="Neu").where(Patient.id == p.id).execute()  # index not refreshed
    assert people.find_people("Alt") == []
    people.refresh_index([p.id])
    assert ids(people.find_people("Neu")) == [p.id]


def test_rotation_rekeys_the_index(clean_db, keys):
    old, new = crypto.generate_key(), crypto.generate_key()
    keys(old)
    p = indexed_patient(vorname="Rita", nachname="Rotation")
    keys(new, old)
    assert ids(people.find_people("Rotation")) == [p.id]  # found under the older key
    counts = rotate_keys("Erika", report=None)
    assert counts["patienten.suchindex"] >= 1
    keys(new)
    assert ids(people.find_people("Rotation")) == [p.id]


@pytest.mark.parametrize(
    ("text", "limit", "code"),
    [
        ("", 50, "INVALID_SEARCH"),
        ("   ", 50, "INVALID_SEARCH"),
        ("x" * 201, 50, "INVALID_SEARCH"),
        ("---", 50, "INVALID_SEARCH"),
        (None, 50, "INVALID_SEARCH"),
        ("Müller", 0, "INVALID_LIMIT"),
        ("Müller", 501, "INVALID_LIMIT"),
        ("Müller", True, "INVALID_LIMIT"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(clean_db, text, limit, code):
    p = indexed_patient(nachname="Müller")
    before = (AuditLog.select().count(), Patient.get_by_id(p.id).suchindex)
    with pytest.raises(OperationError) as error:
        people.find_people(text, limit=limit)
    assert error.value.code == code
    assert (AuditLog.select().count(), Patient.get_by_id(p.id).suchindex) == before


def test_erasure_clears_the_index(clean_db):
    from operations.privacy import erase_patient

    p = indexed_patient(vorname="Greta", nachname="Gelöscht", email="greta@example.org")
    assert ids(people.find_people("Gelöscht")) == [p.id]
    erase_patient(p.id, "Erika Muster", "Antrag der Patientin")
    assert Patient.get_by_id(p.id).suchindex is None
    assert people.find_people("Gelöscht") == [] and people.find_people("greta@example.org") == []
