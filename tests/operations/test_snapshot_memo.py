"""The full round's load does not decode again the rows the previous one decoded (issue 16's
time), and never hands back a stale one: a changed column, pending count or key set gives
a freshly decoded row, equal to what a load without the memo reads. Both backends."""

from __future__ import annotations

import datetime as dt

from cryptography.fernet import Fernet

from db.models import Patient, TherapeutAnfragePatient, Therapeutenanfrage, Therapist
from operations import bundles, snapshot
from operations import demo_data as demo
from psymatch import settings

TODAY = dt.date(2025, 3, 14)
NOW = dt.datetime(2025, 3, 14, 10, 0)


def _fresh_therapists():
    """Every therapist, decoded without the memo (a load limited by a condition)."""
    pending = snapshot.therapists_with_pending_anfrage()
    return snapshot.load_therapists(pending, Therapist.id > 0)


def _fresh_searches():
    ids = [s.id for s in snapshot.load_searches(search_ids=None)]
    return snapshot.load_searches(search_ids=ids)


def _by_id(rows):
    return {row.id: row for row in rows}


def test_unchanged_rows_are_reused_and_changed_ones_read_again(clean_db):
    demo.generate(40, 80, seed=3, search_share=1.0, report=None, today=TODAY)
    bundles.run_bundle_round(NOW - dt.timedelta(days=1), respect_flag=False)
    first = snapshot.load(NOW)
    second = snapshot.load(NOW)
    assert second.therapists == first.therapists and second.searches == first.searches
    # nothing changed: every row is the object the first load built
    assert all(a is b for a, b in zip(first.therapists, second.therapists, strict=True))
    assert all(a is b for a, b in zip(first.searches, second.searches, strict=True))

    therapist = first.therapists[0]
    Therapist.update(
        naechster_kontakt_moeglich=TODAY + dt.timedelta(days=30), bevorzugte_symptome=["Angst"]
    ).where(Therapist.id == therapist.id).execute()
    search = first.searches[0]
    Patient.update(symptome=["Sucht"], geburtsdatum=dt.date(1961, 2, 3)).where(
        Patient.id == search.patient_id
    ).execute()
    # an Anfrage answered: its searches' pending counts (part of the row) go down
    other = next(s for s in first.searches[1:] if s.pending)
    line = TherapeutAnfragePatient.get(TherapeutAnfragePatient.platzsuche == other.id)
    Therapeutenanfrage.update(antwort_datum=NOW, antworttyp="keine_Antwort").where(
        Therapeutenanfrage.id == line.therapeutenanfrage_id
    ).execute()

    third = snapshot.load(NOW)
    therapists, searches = _by_id(third.therapists), _by_id(third.searches)
    assert therapists[therapist.id].naechster_kontakt_moeglich == TODAY + dt.timedelta(days=30)
    assert therapists[therapist.id].bevorzugte_symptome == ("Angst",)
    assert searches[search.id].symptome == ("Sucht",)
    assert searches[search.id].geburtsdatum == dt.date(1961, 2, 3)
    assert searches[other.id].pending == other.pending - 1
    # and every row equals a load that decodes everything
    assert _by_id(_fresh_therapists()) == therapists
    assert third.searches == tuple(_fresh_searches())
    # the unchanged ones are still the first load's objects
    untouched = first.therapists[1]
    assert therapists[untouched.id] is untouched


def test_new_encryption_keys_decode_every_search_again(clean_db):
    demo.generate(10, 30, seed=4, search_share=1.0, report=None, today=TODAY)
    before = snapshot.load(NOW).searches
    assert snapshot.load(NOW).searches[0] is before[0]
    keys = settings.get().ENCRYPTION_KEYS
    current = ",".join(settings.get().encryption_keys())
    settings.override(ENCRYPTION_KEYS=f"{Fernet.generate_key().decode()},{current}")
    try:
        after = snapshot.load(NOW).searches
    finally:
        settings.override(ENCRYPTION_KEYS=keys)
    assert after == before
    assert not any(a is b for a, b in zip(before, after, strict=True))
