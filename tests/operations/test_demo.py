"""Demo data (psymatch/demo.py): reproducible, realistic, refused twice, usable from the CLI."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter, defaultdict

import pytest

from db import database, migrate
from db.models import Patient, Platzsuche, PlzCentroid, Therapist
from operations import demo_data as demo
from psymatch.domain import vocab
from psymatch.domain.schedule import parse_schedule, weekly_hours

TODAY = dt.date(2025, 3, 14)
TABLES = (Therapist, Patient, Platzsuche)
BIG_CITIES = ("Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main")


def dump() -> dict[str, list[dict]]:
    """Every row of the three demo tables, every column, ordered by id."""
    return {m._meta.table_name: list(m.select().order_by(m.id).dicts()) for m in TABLES}


def owner_key(nachname: str) -> str:
    """The practice-owner transliteration of docs/domain.md §3 (owner by surname)."""
    lowered = nachname.lower()
    for umlaut, ascii_form in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        lowered = lowered.replace(umlaut, ascii_form)
    return lowered


def age_at(born: dt.date, day: dt.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def in_big_city(ort: str) -> bool:
    return any(ort == city or ort.startswith(city + " ") for city in BIG_CITIES)


def prepare_second_database(url: str, centroids: list[tuple]) -> None:
    """Bind the models to ``url``, migrate it and give it the same PLZ centroids."""
    database.init(url)
    migrate.upgrade(report=lambda _line: None)
    fields = [
        PlzCentroid.plz,
        PlzCentroid.ort,
        PlzCentroid.bundesland,
        PlzCentroid.bundesland_code,
        PlzCentroid.latitude,
        PlzCentroid.longitude,
    ]
    with database.db.atomic():
        for start in range(0, len(centroids), 2000):
            PlzCentroid.insert_many(centroids[start : start + 2000], fields=fields).execute()


def test_same_seed_gives_identical_rows_in_another_database(
    clean_db, migrated, scratch_database_url
):
    counts = demo.generate(300, 200, seed=7, report=None, today=TODAY)
    assert counts["therapists"] == 300 and counts["patients"] == 200
    assert counts["platzsuchen"] == 160
    first = dump()
    centroids = list(PlzCentroid.select().order_by(PlzCentroid.plz).tuples())
    try:
        prepare_second_database(scratch_database_url, centroids)
        assert Therapist.select().count() == 0
        demo.generate(300, 200, seed=7, report=None, today=TODAY)
        second = dump()
        for table, rows in first.items():
            assert len(second[table]) == len(rows), table
            for left, right in zip(rows, second[table], strict=True):
                assert left == right, table
        assert second == first

        # Another seed in the same (emptied) database gives other rows.
        with database.db.atomic():
            for model in reversed(TABLES):
                model.delete().execute()
        demo.generate(300, 200, seed=8, report=None, today=TODAY)
        third = dump()
        assert [r["id"] for r in third["therapeuten"]] == [r["id"] for r in first["therapeuten"]]
        for table in first:
            differing = sum(a != b for a, b in zip(first[table], third[table], strict=True))
            assert differing > 0.9 * len(first[table]), table
    finally:
        database.init(migrated)


def test_distributions_and_consistency(clean_db):
    counts = demo.generate(900, 500, seed=7, search_share=0.7, report=None, today=TODAY)
    therapists = list(Therapist.select().order_by(Therapist.id))
    patients = list(Patient.select().order_by(Patient.id))
    searches = list(Platzsuche.select().order_by(Platzsuche.id))
    assert counts == {
        "therapists": 900,
        "patients": 500,
        "platzsuchen": round(0.7 * 500),
        "seconds": counts["seconds"],
    }
    assert (len(therapists), len(patients), len(searches)) == (900, 500, 350)
    assert [t.external_id for t in therapists[:2]] == ["demo-T0000001", "demo-T0000002"]
    assert patients[-1].external_id == "demo-P0000500"

    # Locations: known PLZ, centroid coordinates (a patient's kept to about 1 km), geo
    # source recorded.
    centroids = {
        plz: (lat, lon)
        for plz, lat, lon in PlzCentroid.select(
            PlzCentroid.plz, PlzCentroid.latitude, PlzCentroid.longitude
        ).tuples()
    }
    for person in therapists + patients:
        assert person.plz in centroids
        lat, lon = centroids[person.plz]
        if isinstance(person, Patient):
            lat, lon = round(lat, 2), round(lon, 2)
        assert (person.latitude, person.longitude) == (lat, lon)
        assert person.geo_quelle == "plz" and person.geo_plz == person.plz
        assert person.ort and person.strasse and not any(c.isdigit() for c in person.ort)
        if person.geschlecht == "weiblich":
            assert person.anrede == "Frau"
        elif person.geschlecht == "männlich":
            assert person.anrede == "Herr"
    city_share_t = sum(in_big_city(t.ort) for t in therapists) / len(therapists)
    city_share_p = sum(in_big_city(p.ort) for p in patients) / len(patients)
    assert 0.1 < city_share_p < city_share_t < 0.45
    assert len({t.plz[:2] for t in therapists}) > 60  # the countryside is covered as well

    # Therapists: email channel, practices, statuses, flags, schedules.
    without_email = sum(t.email is None for t in therapists) / len(therapists)
    assert 0.1 < without_email < 0.2
    practices = defaultdict(list)
    for t in therapists:
        if t.email is not None:
            practices[t.email.strip().lower()].append(t)
    groups = {email: members for email, members in practices.items() if len(members) > 1}
    assert len(groups) >= 10
    in_groups = sum(len(members) for members in groups.values())
    assert 0.05 < in_groups / len(therapists) < 0.16
    for email, members in groups.items():
        assert 2 <= len(members) <= 4
        assert len({m.plz for m in members}) == 1
        assert any(owner_key(m.nachname) in email for m in members), email
    # Some practices spell the shared address differently (normalised it is one group).
    assert any(len({m.email for m in members}) > 1 for members in groups.values())
    status = Counter(t.status for t in therapists)
    assert 10 <= status["gesperrt"] <= 50 and 5 <= status["inaktiv"] <= 40
    for t in therapists:
        assert (t.status == "gesperrt") == (t.sperrgrund is not None) == (t.sperrdatum is not None)
        assert t.titel in (None, "Dr.", "Dipl.-Psych.", "Prof. Dr.")
        if t.naechster_kontakt_moeglich is not None:
            assert 1 <= (t.naechster_kontakt_moeglich - TODAY).days <= 27
        assert set(t.bevorzugte_symptome) <= set(vocab.SYMPTOME)
        parse_schedule(t.arbeitszeiten)
        windows = parse_schedule(t.telefonische_erreichbarkeit)
        if windows:
            assert 1 <= weekly_hours(windows) <= 3
    share = Counter()
    for t in therapists:
        share["cooling"] += t.naechster_kontakt_moeglich is not None
        share["potenziell"] += t.potenziell_verfuegbar
        share["informiert"] += t.ueber_curavani_informiert
        share["gruppe"] += t.bevorzugt_gruppentherapie
    assert 0.05 < share["cooling"] / 900 < 0.15
    assert 0.14 < share["potenziell"] / 900 < 0.26
    assert 0.24 < share["informiert"] / 900 < 0.36
    assert 0.05 < share["gruppe"] / 900 < 0.15
    keys = {key for t in therapists for key in t.telefonische_erreichbarkeit}
    assert {"montag", "Mo"} <= keys or {"dienstag", "Di"} <= keys
    assert {"Verhaltenstherapie", "tiefenpsychologisch_fundierte_Psychotherapie"} <= {
        t.psychotherapieverfahren for t in therapists
    }
    assert any(t.alter_min for t in therapists) and any(t.alter_max for t in therapists)

    # Patients and their searches.
    by_patient = Counter(s.patient_id for s in searches)
    assert max(by_patient.values()) == 1
    assert all(s.status == "aktiv" for s in searches)
    therapist_ids = {t.id for t in therapists}
    forms = set()
    for s in searches:
        assert 1 <= (TODAY - s.created_at.date()).days <= 241
        assert s.updated_at >= s.created_at
        for entry in s.ausgeschlossene_therapeuten:
            if isinstance(entry, dict):
                forms.add("dict")
                assert entry["id"] in therapist_ids and entry["reason"]
                assert dt.datetime.fromisoformat(entry["excluded_at"]) >= s.created_at
            else:
                forms.add("int")
                assert entry in therapist_ids
    assert forms == {"int", "dict"}
    recent = sum((TODAY - s.created_at.date()).days <= 60 for s in searches)
    assert recent > len(searches) / 3  # more recent searches are more frequent
    emails = [p.email for p in patients if p.email]
    assert len(emails) == len(set(emails)) and all(e.endswith("@example.org") for e in emails)
    for p in patients:
        searching = p.id in by_patient
        assert (p.status == "auf_der_Suche") == searching
        if searching:
            assert p.vertraege_unterschrieben and p.zahlung_eingegangen and p.startdatum
        else:
            assert p.status == "offen" and not p.zahlung_eingegangen and p.startdatum is None
        assert 18 <= age_at(p.geburtsdatum, TODAY) <= 80
        assert 1 <= len(p.symptome) <= 4 and set(p.symptome) <= set(vocab.SYMPTOME)
        assert p.erfahrung_mit_psychotherapie == (
            p.letzte_sitzung_vorherige_psychotherapie is not None
        )
        schedule = parse_schedule(p.zeitliche_verfuegbarkeit, require_slot=True)
        assert sum(len(ranges) for ranges in schedule.values()) >= 3
        max_km = p.raeumliche_verfuegbarkeit.get("max_km")
        assert max_km is None or 10 <= max_km <= 50
        assert set(p.ausgeschlossene_therapeuten) <= therapist_ids
    wishes = Counter(p.bevorzugtes_therapeutengeschlecht for p in patients)
    assert wishes["Egal"] > 0.5 * len(patients)
    methods = Counter(p.bevorzugtes_therapieverfahren for p in patients)
    assert methods["egal"] > 0.5 * len(patients)
    assert {p.verkehrsmittel for p in patients} == {"Auto", "ÖPNV"}
    assert len({p.krankenkasse for p in patients}) >= 10

    # Explicit ids did not stall the id sequences: ordinary inserts continue after them.
    extra = Therapist.create(
        external_id="after-demo", anrede="Frau", geschlecht="weiblich", vorname="A", nachname="B"
    )
    assert extra.id == 901


def test_refuses_second_run_and_bad_arguments(clean_db):
    demo.generate(20, 10, seed=1, report=None, today=TODAY)
    before = {m._meta.table_name: m.select().count() for m in TABLES}
    with pytest.raises(demo.DemoDataError, match="already present"):
        demo.generate(20, 10, seed=2, report=None, today=TODAY)
    assert {m._meta.table_name: m.select().count() for m in TABLES} == before

    # Demo rows of one kind are enough to refuse.
    Therapist.delete().execute()
    with pytest.raises(demo.DemoDataError, match="already present"):
        demo.generate(0, 0, seed=1, report=None)

    for kwargs, message in (
        ({"therapists": -1, "patients": 1}, "therapists"),
        ({"therapists": 1, "patients": -5}, "patients"),
        ({"therapists": 1, "patients": 2.5}, "patients"),
        ({"therapists": 1, "patients": 1, "search_share": 1.5}, "share"),
        ({"therapists": 1, "patients": 1, "search_share": -0.1}, "share"),
    ):
        with pytest.raises(demo.DemoDataError, match=message):
            demo.generate(seed=1, report=None, **kwargs)


def test_edge_counts_and_progress_lines(clean_db):
    lines: list[str] = []
    counts = demo.generate(0, 12, seed=3, search_share=1.0, report=lines.append, today=TODAY)
    assert (counts["therapists"], counts["patients"], counts["platzsuchen"]) == (0, 12, 12)
    assert all(s.ausgeschlossene_therapeuten == [] for s in Platzsuche.select())
    assert any("patients" in line for line in lines) and lines[-1].startswith("demo-data: done")


def test_places_skip_company_postal_codes(clean_db, monkeypatch):
    places, source = demo.load_places()
    assert source.startswith("GeoNames") and 8000 < len(places) < 9000
    assert not any("GmbH" in p.ort or "Agentur" in p.ort for p in places)
    berlin = [p for p in places if p.city == "Berlin"]
    assert len(berlin) > 150 and all(p.tier == 1 for p in berlin)

    # Without the GeoNames file a name heuristic drops most company codes instead.
    monkeypatch.setattr(demo, "_residential_names", lambda: None)
    fallback, source = demo.load_places()
    assert source == "name heuristic" and 8000 < len(fallback) < 9500
    assert not any("GmbH" in p.ort or "Agentur" in p.ort for p in fallback)


def test_cli_demo_data(cli_env, clean_db):
    command = [sys.executable, "-m", "cli.main", "demo-data"]
    args = ["--therapists", "40", "--patients", "30", "--seed", "3", "--actor", "Erika"]
    done = subprocess.run(
        [*command, *args, "--json"], env=cli_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert (counts["therapists"], counts["patients"], counts["platzsuchen"]) == (40, 30, 24)
    assert Therapist.select().count() == 40 and Platzsuche.select().count() == 24

    again = subprocess.run(
        [*command, *args], env=cli_env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0
    assert "already present" in again.stderr
