"""PLZ centroids from the shared GeoNames file, and the geocoding backlog."""

from __future__ import annotations

import csv
from collections import defaultdict

import pytest

from db import plz
from db.models import Patient, PlzCentroid, Therapist
from operations.geocoding.plz import locate_backlog
from workers import geocoding_actors as actors


@pytest.fixture(scope="module")
def geonames_rows():
    by_plz = defaultdict(list)
    with plz.open_geonames() as handle:
        for row in csv.DictReader(handle):
            by_plz[row["postal_code"]].append((float(row["latitude"]), float(row["longitude"])))
    return by_plz


def test_every_postal_code_is_loaded_with_the_mean_of_its_places(clean_db, geonames_rows):
    assert PlzCentroid.select().count() == len(geonames_rows) == 10814
    several = [code for code, points in geonames_rows.items() if len(points) >= 5][:25]
    assert several
    for code in several:
        points = geonames_rows[code]
        centroid = PlzCentroid.get_by_id(code)
        assert centroid.latitude == pytest.approx(sum(p[0] for p in points) / len(points), abs=1e-6)
        assert centroid.longitude == pytest.approx(
            sum(p[1] for p in points) / len(points), abs=1e-6
        )
    assert PlzCentroid.get_by_id("80331").bundesland_code == "BY"
    assert plz.ensure_loaded() == 10814  # a second call loads nothing new


def test_backlog_locates_new_and_moved_records_and_flags_unknown_plz(clean_db):
    common = dict(anrede="Frau", geschlecht="weiblich", vorname="A", nachname="B")
    new = Patient.create(external_id="P-new", plz="10115", **common)
    moved = Therapist.create(
        external_id="T-moved",
        plz="80331",
        latitude=1.0,
        longitude=1.0,
        geo_plz="10115",
        geo_quelle="plz",
        **common,
    )
    unknown = Therapist.create(external_id="T-unknown", plz="00000", **common)
    without_plz = Patient.create(external_id="P-none", **common)

    counts = actors.geocode_backlog()  # the actor's function, called directly
    assert counts == {"located": 2, "unknown_plz": 1}

    berlin, munich = PlzCentroid.get_by_id("10115"), PlzCentroid.get_by_id("80331")
    new, moved = Patient.get_by_id(new.id), Therapist.get_by_id(moved.id)
    assert (new.latitude, new.longitude, new.geo_quelle) == (
        round(berlin.latitude, 2),  # a patient's location is kept to about 1 km
        round(berlin.longitude, 2),
        "plz",
    )
    assert (moved.latitude, moved.geo_plz) == (munich.latitude, "80331")
    unknown = Therapist.get_by_id(unknown.id)
    assert unknown.latitude is None and unknown.geo_plz == "00000"
    assert Patient.get_by_id(without_plz.id).latitude is None
    assert locate_backlog(plz.centroid_map()) == {"located": 0, "unknown_plz": 0}
