"""The staff paths read only what can matter (issue 15.8), and choose exactly as before.

A preview loads only the searches within reach of the therapist (a box on the indexed
coordinates, then the hard rules that need no sealed field); the listing of a PLZ region
loads only that region's practices. Both are compared with the full load on random demo
data, on both backends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random

import pytest

from db.models import Patient, Platzsuche, Therapist
from operations import bundles, snapshot
from operations import demo_data as demo
from operations.errors import OperationError
from psymatch.domain.bundling import list_selectable, select_for_therapist
from tests import factories as f

TODAY = dt.date(2025, 3, 14)
NOW = dt.datetime(2025, 3, 14, 10, 0)


@pytest.fixture
def demo_rows(clean_db):
    demo.generate(300, 500, seed=11, search_share=1.0, report=None, today=TODAY)
    rng = random.Random(5)
    patients = [p.id for p in Patient.select(Patient.id).order_by(Patient.id)]
    therapists = [t.id for t in Therapist.select(Therapist.id).order_by(Therapist.id)]
    # Edge cases of the reach: a far larger own distance, values the selection ignores,
    # patients without coordinates, and exclusions of both kinds.
    for pid in rng.sample(patients, 10):
        Patient.update(raeumliche_verfuegbarkeit={"max_km": 180}).where(Patient.id == pid).execute()
    for pid, space in zip(
        rng.sample(patients, 4),
        ({"max_km": "900"}, {"max_km": True}, {"max_km": -3}, {}),
        strict=True,
    ):
        Patient.update(raeumliche_verfuegbarkeit=space).where(Patient.id == pid).execute()
    for pid in rng.sample(patients, 5):
        Patient.update(latitude=None, longitude=None).where(Patient.id == pid).execute()
    for pid in rng.sample(patients, 30):
        excluded = rng.sample(therapists, 3)
        Patient.update(ausgeschlossene_therapeuten=excluded).where(Patient.id == pid).execute()
        Platzsuche.update(ausgeschlossene_therapeuten=[{"id": str(rng.choice(therapists))}]).where(
            Platzsuche.patient == pid
        ).execute()
    # pending bundle lines (the parallel cap) and therapists with a pending Anfrage
    bundles.run_bundle_round(NOW - dt.timedelta(days=1), respect_flag=False)
    return therapists


def test_preview_with_the_prefilter_chooses_exactly_as_with_every_search(demo_rows):
    params = bundles.params()
    rng = random.Random(9)
    aktiv = [t.id for t in Therapist.select(Therapist.id).where(Therapist.status == "aktiv")]
    fewer = 0
    chosen = 0
    sample = rng.sample(aktiv, 40)
    # with and without age bounds and preferred symptoms (whose patient fields are then
    # not read at all)
    kinds = {
        (bool(t.alter_min or t.alter_max), bool(t.bevorzugte_symptome))
        for t in Therapist.select().where(Therapist.id.in_(sample))
    }
    assert len(kinds) >= 3
    # the practice and its pending Anfragen, asked per therapist, as the full load has them
    everyone = {t.id: t for t in snapshot.load(NOW, include_searches=False).therapists}
    by_address: dict[str, set[int]] = {}
    for t in everyone.values():
        if (t.email or "").strip():
            by_address.setdefault(t.email.strip().lower(), set()).add(t.id)
    pending = 0
    for therapist_id in sample:
        near = snapshot.load(NOW, practice_of=therapist_id)
        full = snapshot.load(NOW, practice_of=therapist_id, prefilter=False)
        address = (everyone[therapist_id].email or "").strip().lower()
        practice = by_address.get(address, set()) | {therapist_id}
        loaded = sorted(near.therapists, key=lambda t: t.id)
        assert loaded == [everyone[i] for i in sorted(practice)]
        pending += sum(t.has_pending_anfrage for t in near.therapists)
        assert len(near.searches) <= len(full.searches)
        fewer += len(near.searches) < len(full.searches)
        prefix = rng.choice([None, None, (Therapist.get_by_id(therapist_id).plz or "00")[:2]])
        for check_contact in (True, False):
            a = select_for_therapist(
                near, params, therapist_id, plz_prefix=prefix, check_contact=check_contact
            )
            b = select_for_therapist(
                full, params, therapist_id, plz_prefix=prefix, check_contact=check_contact
            )
            assert a == b, therapist_id
            chosen += len(a.patients)
    assert fewer >= 30  # the prefilter did leave searches out
    assert pending > 0  # and the sample held therapists waiting for an answer
    assert chosen > 0  # and the comparison covered real bundles


def test_a_therapist_without_coordinates_loads_no_search(demo_rows):
    therapist_id = demo_rows[0]
    Therapist.update(latitude=None, longitude=None).where(Therapist.id == therapist_id).execute()
    assert snapshot.load(NOW, practice_of=therapist_id).searches == ()
    full = snapshot.load(NOW, practice_of=therapist_id, prefilter=False)
    params = bundles.params()
    assert select_for_therapist(
        snapshot.load(NOW, practice_of=therapist_id), params, therapist_id
    ) == select_for_therapist(full, params, therapist_id)


def test_listing_of_a_region_equals_the_listing_from_all_therapists(demo_rows):
    params = bundles.params()
    # practice members without a PLZ still count for their practice
    by_email: dict[str, list[int]] = {}
    for t in Therapist.select(Therapist.id, Therapist.email).where(Therapist.email.is_null(False)):
        by_email.setdefault(t.email.strip().lower(), []).append(t.id)
    shared = [ids for ids in by_email.values() if len(ids) > 1]
    assert shared
    for ids in shared[:5]:
        Therapist.update(plz=None, naechster_kontakt_moeglich=dt.date(2025, 4, 1)).where(
            Therapist.id == ids[-1]
        ).execute()
    everyone = snapshot.load(NOW, include_searches=False)
    prefixes = sorted({(t.plz or "")[:2] for t in everyone.therapists if t.plz}) + ["00", "99"]
    for prefix in prefixes:
        region = snapshot.load(NOW, include_searches=False, region=prefix)
        assert len(region.therapists) <= len(everyone.therapists)
        assert list_selectable(region, params, prefix) == list_selectable(
            everyone, params, prefix
        ), prefix
        assert bundles.list_selectable_therapists(prefix, now=NOW) == list_selectable(
            everyone, params, prefix
        )


@pytest.mark.parametrize("prefix", ["1", "123", "1%", "a1", ""])
def test_listing_refuses_a_bad_prefix(clean_db, prefix):
    with pytest.raises(OperationError) as error:
        bundles.list_selectable_therapists(prefix)
    assert error.value.code == "INVALID_PLZ_PREFIX"


@pytest.mark.parametrize("where", [(48.1738, 11.5858), (53.5511, 9.9937), (47.4011, 7.6489)])
def test_a_patient_exactly_at_its_own_distance_is_loaded_from_every_direction(clean_db, where):
    """The box narrowed in SQL to each patient's own distance keeps everyone H1 keeps.

    Around a therapist off the patients' 0.01° grid, patients in every direction, each
    accepting exactly its distance (it passes H1) or 0.01 km less (it fails), and one far
    patient accepting 60 km, so that the indexed box is far larger than the own ones."""
    from psymatch.domain.geo import haversine_km

    t_lat, t_lon = where
    therapist = f.therapist(latitude=t_lat, longitude=t_lon)
    radius = bundles.params().earth_radius_km
    within, beyond = set(), set()
    for step in range(24):
        bearing = math.radians(step * 15 + 7)
        for km in (3.3, 11.7, 24.6):
            lat = round(t_lat + km * math.cos(bearing) / 111.2, 2)
            lon = round(t_lon + km * math.sin(bearing) / (111.2 * math.cos(math.radians(t_lat))), 2)
            distance = float(haversine_km(t_lat, t_lon, lat, lon, radius))
            for max_km, kept in ((distance, within), (round(distance - 0.01, 2), beyond)):
                patient = f.patient(
                    latitude=lat, longitude=lon, raeumliche_verfuegbarkeit={"max_km": max_km}
                )
                kept.add(f.search(patient_obj=patient).id)
    far = f.search(
        patient_obj=f.patient(
            latitude=round(t_lat + 0.45, 2),
            longitude=t_lon,
            raeumliche_verfuegbarkeit={"max_km": 60},
        )
    )
    near = snapshot.load(f.NOW, practice_of=therapist.id)
    full = snapshot.load(f.NOW, practice_of=therapist.id, prefilter=False)
    assert {s.id for s in near.searches} == within | {far.id}
    params = bundles.params()
    for size in (6, 500):  # the chosen six, and everyone eligible (the count)
        sized = dataclasses.replace(params, max_size=size)
        chosen = select_for_therapist(near, sized, therapist.id, mode="staff")
        assert chosen == select_for_therapist(full, sized, therapist.id, mode="staff")
    assert chosen.eligible_count == len(within) + 1


def test_an_empty_or_missing_address_makes_no_practice(clean_db):
    alone = [f.therapist(email=email) for email in ("", " ", None, None)]
    pair = [f.therapist(email="Praxis@Example.org "), f.therapist(email="praxis@example.org")]
    for therapist in alone:
        snap = snapshot.load(NOW, practice_of=therapist.id, include_searches=False)
        assert [t.id for t in snap.therapists] == [therapist.id]
    snap = snapshot.load(NOW, practice_of=pair[0].id, include_searches=False)
    assert sorted(t.id for t in snap.therapists) == [pair[0].id, pair[1].id]


def test_a_practice_reads_the_weekly_email_rule_as_the_full_load(clean_db):
    """The last inquiry or reminder per practice address, read with the members, equals
    what the full load reads for every address (rule 4)."""
    from db.models import Email

    members = [f.therapist(email="Praxis@Example.org"), f.therapist(email=" praxis@example.org")]
    other = f.therapist(email="allein@example.org")
    silent = f.therapist(email="still@example.org")
    sent = [
        (members[1], "anfrage", NOW - dt.timedelta(days=9)),
        (members[0], "erinnerung", NOW - dt.timedelta(days=3)),
        (members[0], "sonstige", NOW - dt.timedelta(days=1)),  # not counted by the rule
        (other, "anfrage", NOW - dt.timedelta(days=2)),
    ]
    for n, (therapist, art, queued) in enumerate(sent):
        Email.create(
            therapist=therapist.id,
            art=art,
            idempotenz_schluessel=f"{art}:{n}",
            betreff="Therapieanfrage",
            empfaenger_email=therapist.email.upper(),
            absender_email="anfragen@psymatch.example",
            in_warteschlange_am=queued,
        )
    everyone = snapshot.load(NOW, include_searches=False).email_last_queued
    assert everyone["praxis@example.org"] == NOW - dt.timedelta(days=3)
    for therapist in (*members, other, silent):
        practice = snapshot.load(NOW, practice_of=therapist.id, include_searches=False)
        address = therapist.email.strip().lower()
        expected = {address: everyone[address]} if address in everyone else {}
        assert dict(practice.email_last_queued) == expected
