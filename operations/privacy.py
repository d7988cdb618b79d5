"""GDPR erasure of a patient (Art. 17 DSGVO): anonymise personal data, keep statistics.

``erase_patient`` runs in one write transaction. It replaces the patient's names
by "gelöscht", clears contact data, the insurance number, GP and referrer, cuts
the birth date to 1 January of its year, replaces the external id and moves a
street-level location back to the PLZ centroid. The patient's own emails lose
subject, bodies and address; every other stored text that belongs to the
patient's searches, bundle lines, calls and the therapists' replies has the
patient's names and contact data replaced by "gelöscht". Ids, dates, states,
Platzsuchen, Therapeutenanfragen and bundle lines stay, so every metric of
docs/domain.md §14 is unchanged. One audit row names the staff member and the reason.

Refused (nothing changed): unknown patient, missing actor or reason, and a patient
whose search is still ``aktiv`` or ``pausiert`` (cancel it first). Erasing an
erased patient changes nothing and reports ``already_erased``.

``export_patient`` (Art. 15 DSGVO, right of access) reads everything stored about one
patient, decrypted: master data, searches, bundle lines with their outcomes, the emails
to the patient with their bodies, calls, link clicks and the audit rows about the patient,
its searches, calls and clicks. It writes nothing but its own audit row
(``patient_exported``, actor required), which the export lists too.

``run_retention`` erases (``erase_patient``, actor ``retention``) every patient who has
searches, all of them ``erfolgreich`` or ``abgebrochen`` and none changed for more than
``RETENTION_DAYS`` days (a search's ``updated_at``: the day it was closed or, when it was
edited later, that later day). Patients already erased are not touched again, so a
second run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re

from peewee import ForeignKeyField

from db.database import write_transaction
from db.models import (
    AuditLog,
    Email,
    EmailInhalt,
    Geocache,
    InboundMessage,
    LinkKlick,
    Patient,
    Platzsuche,
    PlzCentroid,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    utcnow,
)
from psymatch import settings

from . import audit
from .errors import OperationError

ERASED = "gelöscht"
_MIN_NEEDLE = 3


def erased_external_id(patient_id: int) -> str:
    return f"{ERASED}-{patient_id}"


def _needles(patient: Patient) -> list[str]:
    """The identifying texts to cut out of free text, longest first."""
    full = " ".join(p for p in (patient.vorname, patient.nachname) if p)
    values = {
        full,
        patient.nachname,
        patient.email,
        patient.telefon,
        patient.strasse,
        patient.krankenversicherungsnummer,
        patient.external_id,
    }
    return sorted((v for v in values if v and len(v.strip()) >= _MIN_NEEDLE), key=len, reverse=True)


def scrub(text: str | None, needles: list[str]) -> str | None:
    """``text`` with every needle (case-insensitive) replaced by "gelöscht"."""
    if not text or not needles:
        return text
    pattern = re.compile("|".join(re.escape(n.strip()) for n in needles), re.IGNORECASE)
    return pattern.sub(ERASED, text)


def _scrub_rows(query, fields, needles) -> int:
    """Scrub ``fields`` of every row of ``query``; returns how many rows changed."""
    return len(_scrubbed(query, fields, needles))


def _scrubbed(query, fields, needles) -> set:
    """Scrub ``fields`` of every row of ``query``; returns the keys of the rows changed."""
    changed = set()
    for row in query:
        updates = {}
        for name in fields:
            value = getattr(row, name)
            cleaned = scrub(value, needles)
            if cleaned != value:
                updates[name] = cleaned
        if updates:
            model = type(row)
            model.update(updates).where(model._meta.primary_key == row._pk).execute()
            changed.add(row._pk)
    return changed


_BODIES = ("inhalt_markdown", "inhalt_html", "inhalt_text")


def _scrub_therapist_emails(anfrage_ids: list[int], needles) -> int:
    """Scrub the patient out of the emails to therapists about ``anfrage_ids``
    (subject, bodies, recorded answer); returns how many emails changed."""
    about = Email.therapeutenanfrage.in_(anfrage_ids) & Email.patient.is_null()
    changed = _scrubbed(Email.select().where(about), ("betreff", "antwortinhalt"), needles)
    bodies = EmailInhalt.select().where(EmailInhalt.email.in_(Email.select(Email.id).where(about)))
    return len(changed | _scrubbed(bodies, _BODIES, needles))


def erase_patient(patient_id: int, actor: str, reason: str, *, now=None) -> dict:
    """Anonymise one patient; returns what was changed (see the module docstring)."""
    actor, reason = (actor or "").strip(), (reason or "").strip()
    if not actor:
        raise OperationError("ACTOR_REQUIRED", "the staff member's name is required")
    if not reason:
        raise OperationError("REASON_REQUIRED", "a reason for the erasure is required")
    now = now or utcnow()
    with write_transaction():
        patient = Patient.locked_by_id(patient_id)
        if patient is None:
            raise OperationError("PATIENT_NOT_FOUND", f"no patient {patient_id}", status=404)
        if patient.external_id == erased_external_id(patient.id):
            return {"patient_id": patient.id, "already_erased": True}
        running = (
            Platzsuche.select(Platzsuche.id)
            .where(
                (Platzsuche.patient == patient.id) & Platzsuche.status.in_(("aktiv", "pausiert"))
            )
            .first()
        )
        if running is not None:
            raise OperationError(
                "ACTIVE_SEARCH_EXISTS",
                f"patient {patient.id} has search {running.id} aktiv or pausiert: cancel it first",
                status=409,
                details={"search_id": running.id},
            )
        needles = _needles(patient)
        search_ids = [
            s.id for s in Platzsuche.select(Platzsuche.id).where(Platzsuche.patient == patient.id)
        ]
        anfrage_ids = [
            line.therapeutenanfrage_id
            for line in TherapeutAnfragePatient.select(
                TherapeutAnfragePatient.therapeutenanfrage
            ).where(TherapeutAnfragePatient.patient == patient.id)
        ]
        geocache = _forget_geocache(patient)
        own = Email.select(Email.id).where(Email.patient == patient.id)
        EmailInhalt.update({name: "" for name in _BODIES}).where(
            EmailInhalt.email.in_(own)
        ).execute()
        counts = {
            "own_emails": Email.update(
                betreff=ERASED,
                empfaenger_email=ERASED,
                empfaenger_name=None,
                antwortinhalt=None,
                updated_at=now,
            )
            .where(Email.patient == patient.id)
            .execute(),
            "own_calls": Telefonanruf.update(ergebnis=None, notizen="", updated_at=now)
            .where(Telefonanruf.patient == patient.id)
            .execute(),
            "therapist_emails": _scrub_therapist_emails(anfrage_ids, needles) if anfrage_ids else 0,
            "replies": _scrub_rows(
                InboundMessage.select().where(InboundMessage.therapeutenanfrage.in_(anfrage_ids)),
                ("raw_payload", "message", "subject", "review_reason"),
                needles,
            )
            if anfrage_ids
            else 0,
            "searches": _scrub_rows(
                Platzsuche.select().where(Platzsuche.id.in_(search_ids)), ("notizen",), needles
            )
            if search_ids
            else 0,
            "bundle_lines": _scrub_rows(
                TherapeutAnfragePatient.select().where(
                    TherapeutAnfragePatient.patient == patient.id
                ),
                ("antwortnotizen",),
                needles,
            ),
            "geocache": geocache,
        }
        location = _plz_location(patient)
        Patient.update(
            external_id=erased_external_id(patient.id),
            vorname=ERASED,
            nachname=ERASED,
            suchindex=None,  # no keyed hash of the old name, email or phone stays
            email=None,
            telefon=None,
            strasse=None,
            krankenversicherungsnummer=None,
            hausarzt=None,
            empfehler_der_unterstuetzung=None,
            geburtsdatum=patient.geburtsdatum.replace(month=1, day=1)
            if patient.geburtsdatum
            else None,
            updated_at=now,
            **location,
        ).where(Patient.id == patient.id).execute()
        audit.record(
            actor,
            "patient_erased",
            "patient",
            patient.id,
            details=counts,
            reason=reason,
            at=now,
        )
    return {"patient_id": patient.id, "already_erased": False, **counts}


def _plz_location(patient: Patient) -> dict:
    """A street-level location goes back to the PLZ centroid (or none)."""
    if patient.geo_quelle != "adresse":
        return {}
    centroid = PlzCentroid.get_or_none(PlzCentroid.plz == patient.plz) if patient.plz else None
    if centroid is None:
        return {"latitude": None, "longitude": None, "geo_quelle": None, "geo_plz": None}
    return {
        "latitude": centroid.latitude,
        "longitude": centroid.longitude,
        "geo_quelle": "plz",
        "geo_plz": patient.plz,
    }


def _forget_geocache(patient: Patient) -> int:
    """Drop the street lookup of the patient's address from the geocoding cache: stored
    under the address's keyed hash (under any key of ENCRYPTION_KEYS), or in plaintext
    by a version before migration 0010."""
    from operations.geocoding.nominatim import cache_keys, normalise_query

    query = normalise_query(patient.strasse, patient.plz, patient.ort)
    if query is None:
        return 0
    keys = [*cache_keys("patient", query), query]
    return Geocache.delete().where(Geocache.query.in_(keys)).execute()


# --- Art. 15: export -------------------------------------------------------------------------

EXPORT_FORMAT = 1
_NOT_EXPORTED = {LinkKlick: ("remote_addr",)}  # the therapist's IP, not the patient's data


def _plain(row, skip=()) -> dict:
    """A row's columns as stored (encrypted ones decrypted); foreign keys as ``<name>_id``."""
    out = {}
    for field in row._meta.sorted_fields:
        if field.name in skip or field.name in _NOT_EXPORTED.get(type(row), ()):
            continue
        name = f"{field.name}_id" if isinstance(field, ForeignKeyField) else field.name
        out[name] = row.__data__.get(field.name)
    return out


def _of_patient(model, patient_id: int) -> list:
    return list(model.select().where(model.patient == patient_id).order_by(model.id))


def export_patient(patient_id: int, actor: str, *, now=None) -> dict:
    """Everything stored about one patient, decrypted (see the module docstring); one
    audit row ``patient_exported``. Dates and times stay ``date`` / ``datetime`` values
    (``json.dumps(..., default=str)`` writes them as ISO 8601)."""
    actor = (actor or "").strip()
    if not actor:
        raise OperationError("ACTOR_REQUIRED", "the staff member's name is required")
    now = now or utcnow()
    with write_transaction():
        patient = Patient.by_id(patient_id)
        if patient is None:
            raise OperationError("PATIENT_NOT_FOUND", f"no patient {patient_id}", status=404)
        audit.record(actor, "patient_exported", "patient", patient.id, at=now)
        searches = _of_patient(Platzsuche, patient.id)
        lines = list(
            TherapeutAnfragePatient.select(TherapeutAnfragePatient, Therapeutenanfrage)
            .join(Therapeutenanfrage)
            .where(TherapeutAnfragePatient.patient == patient.id)
            .order_by(TherapeutAnfragePatient.id)
        )
        emails = _of_patient(Email, patient.id)
        bodies = (
            {
                b.email_id: b
                for b in EmailInhalt.select().where(EmailInhalt.email.in_([e.id for e in emails]))
            }
            if emails
            else {}
        )
        calls = _of_patient(Telefonanruf, patient.id)
        clicks = _of_patient(LinkKlick, patient.id)
        about = {
            "patient": [patient.id],
            "platzsuche": [s.id for s in searches],
            "telefonanruf": [c.id for c in calls],
            "link_klick": [k.id for k in clicks],
        }
        condition = None
        for entity, ids in about.items():
            if ids:
                part = (AuditLog.entity == entity) & AuditLog.entity_id.in_([str(i) for i in ids])
                condition = part if condition is None else condition | part
        audit_rows = list(AuditLog.select().where(condition).order_by(AuditLog.at, AuditLog.id))
    return {
        "format": EXPORT_FORMAT,
        "exported_at": now,
        "exported_by": actor,
        "patient": _plain(patient),
        "searches": [_plain(s) for s in searches],
        "bundle_lines": [
            {
                **_plain(line),
                "anfrage": {
                    "therapist_id": line.therapeutenanfrage.therapist_id,
                    "gesendet_datum": line.therapeutenanfrage.gesendet_datum,
                    "antwort_datum": line.therapeutenanfrage.antwort_datum,
                    "antworttyp": line.therapeutenanfrage.antworttyp,
                },
            }
            for line in lines
        ],
        "emails": [
            {**_plain(e), "body": _plain(bodies[e.id], skip=("email",)) if e.id in bodies else None}
            for e in emails
        ],
        "calls": [_plain(c) for c in calls],
        "link_clicks": [_plain(k) for k in clicks],
        "audit": [_plain(a) for a in audit_rows],
    }


# --- retention --------------------------------------------------------------------------------

CLOSED = ("erfolgreich", "abgebrochen")


def retention_candidates(now=None, days: int | None = None) -> list[int]:
    """Ids of the patients ``run_retention`` erases (not yet erased), ascending."""
    days = settings.get().RETENTION_DAYS if days is None else days
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    kept = Platzsuche.select(Platzsuche.patient).where(
        Platzsuche.status.not_in(CLOSED) | (Platzsuche.updated_at > cutoff)
    )
    query = (
        Patient.select(Patient.id, Patient.external_id)
        .where(Patient.id.in_(Platzsuche.select(Platzsuche.patient)) & Patient.id.not_in(kept))
        .order_by(Patient.id)
    )
    return [p.id for p in query if p.external_id != erased_external_id(p.id)]


def run_retention(
    *, dry_run: bool = False, now=None, days: int | None = None, actor: str = "retention"
) -> dict:
    """Erase the patients whose searches all closed more than ``RETENTION_DAYS`` ago;
    returns the counts (``dry_run``: who would be erased, nothing changed). ``actor`` names
    each erasure's audit row: ``retention`` for the clock, the operator when run by hand."""
    days = settings.get().RETENTION_DAYS if days is None else days
    now = now or utcnow()
    candidates = retention_candidates(now, days)
    erased, skipped = [], []
    if not dry_run:
        reason = f"retention: every search closed more than {days} days ago"
        for patient_id in candidates:
            try:
                result = erase_patient(patient_id, actor, reason, now=now)
            except OperationError:  # a search was reopened meanwhile: keep the patient
                skipped.append(patient_id)
                continue
            (skipped if result["already_erased"] else erased).append(patient_id)
    return {
        "retention_days": days,
        "cutoff": (now - dt.timedelta(days=days)).isoformat(),
        "dry_run": dry_run,
        "eligible": len(candidates),
        "erased": len(erased),
        "skipped": len(skipped),
        "patient_ids": candidates if dry_run else erased,
    }
