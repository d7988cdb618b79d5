"""Staff corrections of a patient or therapist (issue 15.2, spec §0 point 13, §13).

Every edit goes through the import's validation (``psymatch.domain.validation``): the same
parsers, maintained fields, required fields, known PLZ, dates of past events and rules
between fields. A refused edit raises ``OperationError`` with its outcome code and writes
nothing; a successful one writes the changed fields and one audit row naming the staff
member (``edit_patient`` / ``edit_therapist``; only the names of the fields, never their
values). Unlike an import, an edit may clear an optional field (``None`` or blank text).

Outcome codes: ``ACTOR_REQUIRED``, ``PATIENT_NOT_FOUND`` / ``THERAPIST_NOT_FOUND`` (404),
``PATIENT_ERASED`` (409), ``NO_CHANGES`` (no field given), ``UNKNOWN_FIELD``,
``FIELD_MAINTAINED`` (psymatch keeps it itself), ``FIELD_NOT_EDITABLE`` (the import key,
or a therapist's status, which has its own operations with a reason), ``FIELD_REQUIRED``
(a required field cleared), ``FIELD_INVALID`` (the validation's reason), ``INVALID_STATUS``,
``REASON_REQUIRED``, ``REASON_TOO_LONG``, ``INVALID_DATE``, ``STATUS_UNCHANGED`` (409).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from peewee import JSONField

from db.database import write_transaction
from db.models import Patient, PlzCentroid, Therapist, utcnow
from psymatch.domain import validation, vocab
from psymatch.domain.validation import RowError

from . import audit, notes, people
from .errors import OperationError
from .intake import local_today
from .locks import bundling_lock
from .privacy import ERASED
from .therapist_contact import email_replaced

REASON_MAX = 1000
# The import's key of a record, and a therapist's status with its block reason and date
# (set_therapist_status keeps them consistent and asks for a reason).
NOT_EDITABLE = {
    "patients": {"external_id"},
    "therapists": {"external_id", "status", "sperrgrund", "sperrdatum"},
}
SEARCH_FIELDS = {"vorname", "nachname", "email", "telefon"}
ADDRESS_FIELDS = {"plz", "strasse", "ort"}
MODELS = {"patients": Patient, "therapists": Therapist}
NOT_FOUND = {"patients": "PATIENT_NOT_FOUND", "therapists": "THERAPIST_NOT_FOUND"}
WHO = {"patients": "patient", "therapists": "therapist"}


def _actor(actor) -> str:
    try:
        return audit.actor_name(actor)
    except ValueError as error:
        raise OperationError(
            "ACTOR_REQUIRED", f"the staff member's name is required: {error}"
        ) from None


def _reason(reason) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise OperationError("REASON_REQUIRED", "a reason is required")
    if len(text) > REASON_MAX:
        raise OperationError(
            "REASON_TOO_LONG", f"the reason has {len(text)} characters, at most {REASON_MAX}"
        )
    return text


def _field_error(kind: str, error: RowError) -> OperationError:
    code = "FIELD_REQUIRED" if error.reason == "required field missing" else "FIELD_INVALID"
    message = (
        "a required field cannot be cleared"
        if code == "FIELD_REQUIRED"
        else f"invalid value: {error.reason}"
    )
    return OperationError(code, message, details={"field": error.field, "reason": error.reason})


def _check_names(kind: str, changes) -> None:
    """Refusals by field name, with their own codes, before any value is parsed."""
    if not isinstance(changes, Mapping) or not changes:
        raise OperationError("NO_CHANGES", "no field to change")
    fields = validation.FIELDS[kind]
    for name in changes:
        if not isinstance(name, str) or (
            name not in fields and name not in validation.MAINTAINED[kind]
        ):
            raise OperationError(
                "UNKNOWN_FIELD", f"unknown field {name!r}", details={"field": str(name)}
            )
        if name in validation.MAINTAINED[kind]:
            raise OperationError(
                "FIELD_MAINTAINED",
                f"{name} is maintained by psymatch ({validation.MAINTAINED[kind][name]})",
                details={"field": name},
            )
        if name in NOT_EDITABLE[kind]:
            raise OperationError(
                "FIELD_NOT_EDITABLE",
                f"{name} cannot be edited"
                + (
                    " (status: set_therapist_status, with a reason)" if kind == "therapists" else ""
                ),
                details={"field": name},
            )


def _cleared_value(model, name: str):
    """What a cleared field is stored as: NULL, or an empty list / object."""
    field = model._meta.fields[name]
    if isinstance(field, JSONField):
        return field.default() if callable(field.default) else field.default
    if not field.null or name == "symptome":  # a patient has at least one symptom
        raise OperationError(
            "FIELD_REQUIRED", "this field cannot be cleared", details={"field": name}
        )
    return None


def _location(plz: str) -> dict:
    centroid = PlzCentroid.get_by_id(plz)
    return {
        "latitude": centroid.latitude,
        "longitude": centroid.longitude,
        "geo_quelle": "plz",
        "geo_plz": plz,
    }


class _KnownPlz:
    """The validation's ``known_plz``: one lookup of the PLZ asked for, not 11k rows."""

    def __contains__(self, plz) -> bool:
        return PlzCentroid.get_or_none(PlzCentroid.plz == plz) is not None


def therapist_email_changed(
    therapist: Therapist, before: str | None, after: str | None, *, actor: str, now: dt.datetime
) -> None:
    """Called in the edit's transaction when a therapist's email address changes through
    ``edit_therapist``: a new address clears its bounce mark (domain §0.12,
    ``operations.therapist_contact.email_replaced``)."""
    email_replaced(therapist, before, after, actor=actor, now=now)


def _edit(kind: str, record_id: int, changes, *, actor, reason, now, action: str) -> dict:
    actor = _actor(actor)
    _check_names(kind, changes)
    reason = _reason(reason) if reason is not None and str(reason).strip() else None
    model = MODELS[kind]
    now = now or utcnow()
    try:
        values, cleared = validation.validate_changes(
            kind, changes, _KnownPlz(), today=local_today()
        )
    except RowError as error:
        raise _field_error(kind, error) from None
    with write_transaction():
        if kind == "therapists":
            bundling_lock(shared=True)  # preferences and flags feed the selection
        record = model.locked_by_id(record_id)
        if record is None:
            raise OperationError(NOT_FOUND[kind], f"no {WHO[kind]} {record_id}", status=404)
        if kind == "patients" and (record.external_id or "").startswith(ERASED):
            raise OperationError("PATIENT_ERASED", f"patient {record_id} was erased", status=409)
        new = dict(values)
        for name in cleared:
            new[name] = _cleared_value(model, name)
        stored = {name: getattr(record, name) for name in new}
        try:
            validation.check_consistency({**record.__data__, **new})
        except RowError as error:
            raise _field_error(kind, error) from None
        changed = {name: value for name, value in new.items() if stored[name] != value}
        result = {"id": record_id, "changed": sorted(changed), "actor": actor}
        if not changed:
            return result
        before_email = record.email
        for name, value in changed.items():
            setattr(record, name, value)
        if kind == "patients" and changed.keys() & SEARCH_FIELDS:
            record.suchindex = people.index_value(
                record.vorname, record.nachname, record.email, record.telefon
            )
        if changed.keys() & ADDRESS_FIELDS:
            # a moved address: back to the PLZ centroid, as the import does
            for name, value in _location(record.plz).items():
                setattr(record, name, value)
        record.updated_at = now
        record.save()
        if kind == "therapists" and "email" in changed:
            therapist_email_changed(record, before_email, record.email, actor=actor, now=now)
        audit.record(
            actor,
            action,
            "patient" if kind == "patients" else "therapist",
            record_id,
            {"fields": sorted(changed)},
            reason,
            at=now,
        )
    return result


def edit_patient(
    patient_id: int, changes: Mapping, *, actor: str, reason: str | None = None, now=None
) -> dict:
    """Change some fields of a patient after validation; ``changed`` names what differed
    (empty: nothing written, no audit row). See the module docstring for the codes."""
    return _edit(
        "patients", patient_id, changes, actor=actor, reason=reason, now=now, action="edit_patient"
    )


def edit_therapist(
    therapist_id: int, changes: Mapping, *, actor: str, reason: str | None = None, now=None
) -> dict:
    """Change fields of a therapist: contact data, flags and preferences
    (``bevorzugte_symptome``, ``alter_min``/``alter_max``, ``geschlechtspraeferenz``,
    ``arbeitszeiten``, ``telefonische_erreichbarkeit``, ...). Not the status."""
    return _edit(
        "therapists",
        therapist_id,
        changes,
        actor=actor,
        reason=reason,
        now=now,
        action="edit_therapist",
    )


def set_potenziell_verfuegbar(
    therapist_id: int, value, notizen: str | None = None, *, actor: str, now=None
) -> dict:
    """Set ``potenziell_verfuegbar`` (and its notes, when given; blank text clears them)."""
    changes = {"potenziell_verfuegbar": value}
    if value is None or (isinstance(value, str) and not value.strip()):
        raise OperationError(
            "FIELD_INVALID",
            "expected true or false",
            details={"field": "potenziell_verfuegbar"},
        )
    if notizen is not None:
        changes["potenziell_verfuegbar_notizen"] = notizen
    return _edit(
        "therapists",
        therapist_id,
        changes,
        actor=actor,
        reason=None,
        now=now,
        action="set_potenziell_verfuegbar",
    )


def set_therapist_status(
    therapist_id: int,
    status: str,
    reason: str,
    *,
    actor: str,
    sperrdatum=None,
    now: dt.datetime | None = None,
) -> dict:
    """Block (``gesperrt``: ``sperrgrund`` = reason, ``sperrdatum`` = the given date or the
    local today), deactivate (``inaktiv``) or reactivate (``aktiv``: block reason and date
    cleared) a therapist, always with a reason: a line in the therapist's notes and one audit
    row (``set_therapist_status``, before and after). Only ``aktiv`` therapists are
    contacted. A status the therapist has already is refused (``STATUS_UNCHANGED``), so a
    repeated click changes nothing."""
    actor = _actor(actor)
    if status not in vocab.THERAPEUTENSTATUS:
        raise OperationError(
            "INVALID_STATUS",
            f"unknown status {status!r}",
            details={"valid": list(vocab.THERAPEUTENSTATUS)},
        )
    reason = _reason(reason)
    now = now or utcnow()
    day = None
    if sperrdatum is not None and not (isinstance(sperrdatum, str) and not sperrdatum.strip()):
        if status != "gesperrt":
            raise OperationError("INVALID_DATE", "a block date only goes with gesperrt")
        try:
            day = validation.date("sperrdatum", sperrdatum)
        except RowError:
            raise OperationError(
                "INVALID_DATE",
                f"invalid date {sperrdatum!r} (DD.MM.YYYY)",
                details={"field": "sperrdatum"},
            ) from None
        if day > local_today():
            raise OperationError(
                "INVALID_DATE",
                "the block date lies in the future",
                details={"field": "sperrdatum"},
            )
    with write_transaction():
        bundling_lock(shared=True)
        therapist = Therapist.locked_by_id(therapist_id)
        if therapist is None:
            raise OperationError("THERAPIST_NOT_FOUND", f"no therapist {therapist_id}", status=404)
        before = therapist.status
        if before == status:
            raise OperationError(
                "STATUS_UNCHANGED",
                f"therapist {therapist_id} is {status} already",
                status=409,
            )
        therapist.status = status
        if status == "gesperrt":
            therapist.sperrgrund = reason
            therapist.sperrdatum = day or local_today()
        elif status == "aktiv":
            therapist.sperrgrund = None
            therapist.sperrdatum = None
        therapist.notizen = notes.append(
            therapist.notizen,
            now,
            actor,
            f"Status {before} → {status}: {reason}",
        )
        therapist.updated_at = now
        therapist.save()
        audit.record(
            actor,
            "set_therapist_status",
            "therapist",
            therapist_id,
            {"before": before, "after": status},
            reason,
            at=now,
        )
    return {"id": therapist_id, "before": before, "after": status, "actor": actor}


def block_therapist(therapist_id: int, reason: str, *, actor: str, sperrdatum=None, now=None):
    return set_therapist_status(
        therapist_id, "gesperrt", reason, actor=actor, sperrdatum=sperrdatum, now=now
    )


def deactivate_therapist(therapist_id: int, reason: str, *, actor: str, now=None):
    return set_therapist_status(therapist_id, "inaktiv", reason, actor=actor, now=now)


def reactivate_therapist(therapist_id: int, reason: str, *, actor: str, now=None):
    return set_therapist_status(therapist_id, "aktiv", reason, actor=actor, now=now)
