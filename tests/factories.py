"""Small helpers that create database rows with sensible defaults for tests."""

from __future__ import annotations

import datetime as dt
import itertools

from db.models import Patient, Platzsuche, PlzCentroid, Therapeutenanfrage, Therapist

_counter = itertools.count(1)
NOW = dt.datetime(2026, 11, 30, 8, 0)  # a Monday, naive UTC


def _located(plz: str) -> dict:
    centroid = PlzCentroid.get_by_id(plz)
    return {
        "plz": plz,
        "latitude": centroid.latitude,
        "longitude": centroid.longitude,
        "geo_quelle": "plz",
        "geo_plz": plz,
    }


def therapist(plz: str = "10115", **fields) -> Therapist:
    n = next(_counter)
    values = {
        "external_id": f"T-{n}",
        "anrede": "Frau",
        "geschlecht": "weiblich",
        "vorname": "Tina",
        "nachname": f"Thera{n}",
        "email": f"praxis{n}@example.org",
        "status": "aktiv",
        **_located(plz),
    }
    values.update(fields)
    return Therapist.create(**values)


def patient(plz: str = "10117", **fields) -> Patient:
    n = next(_counter)
    values = {
        "external_id": f"P-{n}",
        "anrede": "Herr",
        "geschlecht": "männlich",
        "vorname": "Paul",
        "nachname": f"Pat{n}",
        "email": f"paul{n}@example.org",
        "krankenkasse": "TK",
        "geburtsdatum": dt.date(1990, 1, 1),
        "symptome": ["Schlafstörungen"],
        "erfahrung_mit_psychotherapie": False,
        "offen_fuer_gruppentherapie": True,
        "zeitliche_verfuegbarkeit": {"montag": ["09:00-17:00"]},
        **_located(plz),
    }
    values.update(fields)
    return Patient.create(**values)


def search(days_waiting: int = 10, patient_obj: Patient | None = None, **fields) -> Platzsuche:
    patient_obj = patient_obj or patient()
    created = NOW - dt.timedelta(days=days_waiting, hours=1)
    return Platzsuche.create(patient=patient_obj, created_at=created, updated_at=created, **fields)


def searches(count: int, start_wait: int = 10, **fields) -> list[Platzsuche]:
    return [search(days_waiting=start_wait + i, **fields) for i in range(count)]


def mark_sent(anfrage_id: int, when: dt.datetime = NOW) -> None:
    """Stand-in for the sending step: the Anfrage went out by phone (no email row needed)."""
    Therapeutenanfrage.update(gesendet_datum=when).where(
        Therapeutenanfrage.id == anfrage_id
    ).execute()
