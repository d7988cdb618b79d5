"""Plain data for rendering, and the adapters that build it from models.

The renderer never sees a model. ``PatientInfo`` is the anonymised view of a
patient used in therapist emails: it has no field for name, email, phone or
street, so no template can leak them. ``PatientContact`` (placement emails to the
patient) is the only view with the patient's name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from psymatch.domain.bundling.practice import usable_email


@dataclass(frozen=True)
class PatientInfo:
    """What a therapist may learn about a patient before offering a place."""

    patient_id: int
    geburtsdatum: dt.date | None
    geschlecht: str | None
    symptome: tuple[str, ...]
    krankenkasse: str | None
    erfahrung_mit_psychotherapie: bool | None
    letzte_sitzung: dt.date | None
    offen_fuer_gruppentherapie: bool | None
    zeitliche_verfuegbarkeit: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TherapistInfo:
    therapist_id: int
    anrede: str | None
    titel: str | None
    vorname: str
    nachname: str
    email: str | None = None
    telefon: str | None = None
    strasse: str | None = None
    plz: str | None = None
    ort: str | None = None
    telefonische_erreichbarkeit: dict = field(default_factory=dict)
    ueber_curavani_informiert: bool = False
    bevorzugt_gruppentherapie: bool = False


@dataclass(frozen=True)
class PatientContact:
    """The patient as addressee of a placement email."""

    patient_id: int
    anrede: str | None
    vorname: str
    nachname: str
    email: str | None
    zeitliche_verfuegbarkeit: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AcceptedPatient:
    """A patient named in an acceptance confirmation; ``name`` only if staff chose to give it."""

    patient_id: int
    name: str | None = None


@dataclass(frozen=True)
class Meeting:
    """An arranged initial session (placement templates ``meeting_confirmation_*``)."""

    date: dt.date
    time: str  # "HH:MM"


# the Patient columns ``patient_info`` reads (a caller may select only these)
PATIENT_INFO_COLUMNS = (
    "geburtsdatum",
    "geschlecht",
    "symptome",
    "krankenkasse",
    "erfahrung_mit_psychotherapie",
    "letzte_sitzung_vorherige_psychotherapie",
    "offen_fuer_gruppentherapie",
    "zeitliche_verfuegbarkeit",
)


def patient_info(patient) -> PatientInfo:
    """Anonymised view of a ``db.models.Patient``."""
    return PatientInfo(
        patient_id=patient.id,
        geburtsdatum=patient.geburtsdatum,
        geschlecht=patient.geschlecht,
        symptome=tuple(patient.symptome or ()),
        krankenkasse=patient.krankenkasse,
        erfahrung_mit_psychotherapie=patient.erfahrung_mit_psychotherapie,
        letzte_sitzung=patient.letzte_sitzung_vorherige_psychotherapie,
        offen_fuer_gruppentherapie=patient.offen_fuer_gruppentherapie,
        zeitliche_verfuegbarkeit=dict(patient.zeitliche_verfuegbarkeit or {}),
    )


def therapist_info(therapist) -> TherapistInfo:
    """View of a ``db.models.Therapist`` for salutation, contact data and intro choice.

    ``email`` is None when a bounce marked the address invalid (domain §0.12): no email
    names it as the way to reach the therapist (a placement email shows the phone
    instead), and an email to the therapist rendered by mistake has no recipient, so it
    is refused when queued instead of going to the dead address."""
    return TherapistInfo(
        therapist_id=therapist.id,
        anrede=therapist.anrede,
        titel=therapist.titel,
        vorname=therapist.vorname,
        nachname=therapist.nachname,
        email=therapist.email if usable_email(therapist) else None,
        telefon=therapist.telefon,
        strasse=therapist.strasse,
        plz=therapist.plz,
        ort=therapist.ort,
        telefonische_erreichbarkeit=dict(therapist.telefonische_erreichbarkeit or {}),
        ueber_curavani_informiert=bool(therapist.ueber_curavani_informiert),
        bevorzugt_gruppentherapie=bool(therapist.bevorzugt_gruppentherapie),
    )


def patient_contact(patient) -> PatientContact:
    return PatientContact(
        patient_id=patient.id,
        anrede=patient.anrede,
        vorname=patient.vorname,
        nachname=patient.nachname,
        email=patient.email,
        zeitliche_verfuegbarkeit=dict(patient.zeitliche_verfuegbarkeit or {}),
    )
