"""Reads by id through the once-built statement, and saves of only the assigned columns
(db.models.BaseModel: by_id, get_by_id, locked_by_id, save)."""

from __future__ import annotations

import pytest

from db import database
from db.models import Patient, Platzsuche, PlzCentroid, Therapist
from tests import factories as f


def _as_peewee_reads(model, pk):
    """The row as peewee's own query builds it, for comparison."""
    return model.select().where(model._meta.primary_key == pk).get()


def test_reads_by_id_equal_peewee_own_reads_on_every_field(clean_db):
    patient = f.patient(vorname="Jörg", symptome=["Depression", "Angst"])
    search = f.search(patient_obj=patient)
    for model, pk in ((Patient, patient.id), (Platzsuche, search.id)):
        expected = _as_peewee_reads(model, pk).__data__
        with database.write_transaction():
            locked = model.locked_by_id(pk)
        for read in (model.by_id(pk), model.get_by_id(pk), locked):
            assert type(read) is model
            assert read.__data__ == expected  # sealed fields decrypted, keys as ids
            assert not read.is_dirty()
    assert Patient.by_id(patient.id).symptome == ["Depression", "Angst"]
    assert Platzsuche.by_id(search.id).patient_id == patient.id


def test_a_missing_id_reads_none_or_raises_does_not_exist(clean_db):
    assert Therapist.by_id(999_999) is None
    assert PlzCentroid.by_id("00000") is None  # a text key takes the same path
    with database.write_transaction():
        assert Therapist.locked_by_id(999_999) is None
    with pytest.raises(Therapist.DoesNotExist):
        Therapist.get_by_id(999_999)


def test_save_writes_only_the_assigned_columns(clean_db):
    therapist = f.therapist(ort="Berlin", titel=None)
    stale = Therapist.by_id(therapist.id)
    # another transaction changes one column meanwhile
    Therapist.update(ort="Potsdam").where(Therapist.id == therapist.id).execute()
    stale.titel = "Dr."
    stale.save()
    fresh = Therapist.by_id(therapist.id)
    assert (fresh.titel, fresh.ort) == ("Dr.", "Potsdam")  # the other change survives


def test_a_json_column_changed_in_place_is_saved(clean_db):
    search = f.search()
    loaded = Platzsuche.by_id(search.id)
    loaded.ausgeschlossene_therapeuten.append({"id": 7, "reason": "test"})
    loaded.save()  # nothing assigned: peewee's dirty tracking cannot see the append
    assert Platzsuche.by_id(search.id).ausgeschlossene_therapeuten == [{"id": 7, "reason": "test"}]
