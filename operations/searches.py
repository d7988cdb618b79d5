"""The Platzsuche lifecycle (docs/domain.md §4, 11.3, 12): open, change status, assign, exclude."""

from __future__ import annotations

import datetime as dt
import re

import peewee

from db.database import write_transaction
from db.models import AuditLog, Patient, Platzsuche, Therapist, utcnow
from db.statements import Prepared
from psymatch.domain import searches as rules

from . import audit, notes, outbox
from .errors import OperationError
from .locks import bundling_lock
from .responses import add_exclusion, mark_placed_elsewhere
from .therapist_contact import usable_email

UNSET = object()


def _search(search_id: int) -> Platzsuche:
    search = Platzsuche.locked_by_id(search_id)
    if search is None:
        raise OperationError("PLATZSUCHE_NOT_FOUND", f"no Platzsuche {search_id}", status=404)
    return search


_READINESS = Prepared(
    lambda p: (
        Patient.select(Patient.id, *[getattr(Patient, n) for n in rules.READINESS_FIELDS])
        .where(Patient.id == p.patient)
        .limit(1)
    )
)
_ACTIVE_SEARCH = Prepared(
    lambda p: (
        Platzsuche.select()
        .where((Platzsuche.patient == p.patient) & (Platzsuche.status == "aktiv"))
        .limit(1)
    )
)


def create_platzsuche(patient_id: int, notizen: str | None = None, *, actor="staff", now=None):
    """Open an aktiv search after validating the patient (docs/domain.md §12)."""
    now = now or utcnow()
    with write_transaction():
        # only what readiness needs: the patient's identity is not decrypted here
        patient = _READINESS.first(patient=patient_id)
        if patient is None:
            raise OperationError("PATIENT_NOT_FOUND", f"no patient {patient_id}", status=404)
        problem = rules.readiness_error(patient)
        if problem:
            field, reason = problem
            raise OperationError(
                "PATIENT_DATA_INVALID", f"{field}: {reason}", details={"field": field}
            )
        existing = _ACTIVE_SEARCH.first(patient=patient_id)
        if existing:
            raise OperationError(
                "ACTIVE_SEARCH_EXISTS",
                f"patient {patient_id} has aktiv search {existing.id}",
                details={"search_id": existing.id},
            )
        try:
            with Platzsuche._meta.database.atomic():
                search = Platzsuche.create(
                    patient=patient_id,
                    created_at=now,
                    updated_at=now,
                    notizen=notes.line(now, actor, notizen) if notizen else "",
                )
        except peewee.IntegrityError:  # a concurrent request won: the unique index holds
            raise OperationError(
                "ACTIVE_SEARCH_EXISTS", f"patient {patient_id} has an aktiv search"
            ) from None
        audit.record(
            actor, "create_platzsuche", "platzsuche", search.id, {"patient_id": patient_id}, at=now
        )
    return search


def update_platzsuche(
    search_id: int,
    *,
    status: str | None = None,
    vermittelter_therapeut_id=UNSET,
    ausgeschlossene_therapeuten: list | None = None,
    notiz: str | None = None,
    email_template_type: str | None = None,
    meeting_details: dict | None = None,
    actor: str = "staff",
    now: dt.datetime | None = None,
) -> Platzsuche:
    """Change a search: status, manual assignment, exclusion list, note (docs/domain.md §4, §12)."""
    now = now or utcnow()
    with write_transaction():
        bundling_lock(shared=True)
        search = _search(search_id)
        changes: dict = {}
        if ausgeschlossene_therapeuten is not None:
            if not isinstance(ausgeschlossene_therapeuten, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ausgeschlossene_therapeuten
            ):
                raise OperationError(
                    "INVALID_EXCLUSION_LIST", "exclusions must be a list of therapist ids"
                )
            search.ausgeschlossene_therapeuten = list(ausgeschlossene_therapeuten)
            changes["ausgeschlossene_therapeuten"] = ausgeschlossene_therapeuten
        if vermittelter_therapeut_id is not UNSET:
            _assign(search, vermittelter_therapeut_id, now, actor)
            changes["vermittelter_therapeut_id"] = vermittelter_therapeut_id
        if status is not None and status != search.status:
            _change_status(search, status, email_template_type, meeting_details, now, actor)
            changes["status"] = status
        elif status is not None and rules.transition_error(search.status, status):
            raise OperationError("INVALID_STATUS", f"unknown status {status!r}")
        if notiz:
            search.notizen = notes.append(search.notizen, now, actor, notiz)
        search.updated_at = now
        search.save()
        audit.record(actor, "update_platzsuche", "platzsuche", search.id, changes or None, at=now)
    return search


def _assign(search: Platzsuche, therapist_id, now, actor) -> None:
    if therapist_id is not None and Therapist.by_id(therapist_id) is None:
        raise OperationError("THERAPIST_NOT_FOUND", f"no therapist {therapist_id}", status=404)
    if search.status == "erfolgreich" and therapist_id != search.vermittelter_therapeut_id:
        raise OperationError("THERAPIST_LOCKED", "a successful search keeps its placed therapist")
    search.vermittelter_therapeut = therapist_id
    text = f"Manuell zugewiesen: Therapeut {therapist_id}" if therapist_id else "Zuweisung gelöscht"
    search.notizen = notes.append(search.notizen, now, actor, text)
    if therapist_id is not None:
        mark_placed_elsewhere(search.id, except_anfrage_id=None)


def _change_status(search, status, template, meeting, now, actor) -> None:
    error = rules.transition_error(search.status, status)
    if error == "INVALID_STATUS":
        raise OperationError("INVALID_STATUS", f"unknown status {status!r}")
    if error:
        raise OperationError(
            "INVALID_TRANSITION", f"a search cannot go from {search.status} to {status}"
        )
    if status == "erfolgreich":
        if search.vermittelter_therapeut_id is None:
            raise OperationError("THERAPIST_REQUIRED", "set the placed therapist first")
        therapist = Therapist.get_by_id(search.vermittelter_therapeut_id)
        address = usable_email(therapist)  # a bounced address is no way to reach them
        template = template or rules.default_placement_template(address, therapist.telefon)
        if template not in rules.EMAIL_TEMPLATES:
            raise OperationError("INVALID_TEMPLATE", f"unknown email template {template!r}")
        missing = rules.missing_contact(template, address, therapist.telefon)
        if missing:
            raise OperationError(
                "THERAPIST_CONTACT_MISSING",
                f"template {template} tells the patient the therapist's {missing}, "
                "which is not on record; choose another template or add it first",
            )
        if template.startswith("meeting_") and not (
            meeting and meeting.get("date") and meeting.get("time")
        ):
            raise OperationError(
                "MEETING_DETAILS_REQUIRED", "meeting templates need meeting_details date and time"
            )
        search.erfolgreiche_vermittlung_datum = now
        mark_placed_elsewhere(search.id, except_anfrage_id=None)
        outbox.put(
            "send_placement_email",
            {"platzsuche_id": search.id, "template": template, "meeting": meeting or {}},
            outbox.key("vermittlung", search.id),
            now=now,
        )
    search.status = status
    search.notizen = notes.append(search.notizen, now, actor, f"Status: {status}")


def exclude_therapist(search_id: int, therapist_id: int, reason: str, *, actor="staff", now=None):
    """Add one exclusion with a reason (object form, docs/domain.md §12)."""
    now = now or utcnow()
    if not (reason or "").strip():
        raise OperationError("REASON_REQUIRED", "an exclusion needs a reason")
    with write_transaction():
        search = _search(search_id)
        if Therapist.by_id(therapist_id) is None:
            raise OperationError("THERAPIST_NOT_FOUND", f"no therapist {therapist_id}", status=404)
        added = add_exclusion(search, therapist_id, now, reason.strip(), by=actor)
        search.save()
        audit.record(
            actor,
            "exclude_therapist",
            "platzsuche",
            search_id,
            {"therapist_id": therapist_id, "added": added},
            reason,
            at=now,
        )
    return added


def _entry_id(entry):
    return entry.get("id") if isinstance(entry, dict) else entry


_REASON_ANFRAGE = re.compile(r"\(A(\d+)\)")


def list_exclusions(search_id: int) -> list[dict]:
    """The therapists excluded from one search, in the order they were added: id, reason,
    date and who excluded them (``None`` where nothing tells).

    Who: the entry's ``by`` (written since issue 15); for older entries the latest audit
    row that added it (``exclude_therapist`` on the search, or the ``record_response`` of
    the Anfrage named in an automatic reason such as ``abgelehnt_nicht_geeignet (A12)``).
    Plain-id entries (from the import or the list replacement) carry neither reason nor
    date; their date and actor come from the audit row when there is one."""
    search = Platzsuche.by_id(search_id)
    if search is None:
        raise OperationError("PLATZSUCHE_NOT_FOUND", f"no Platzsuche {search_id}", status=404)
    entries = list(search.ausgeschlossene_therapeuten or [])
    added_by: dict[int, AuditLog] = {}
    if any(not (isinstance(e, dict) and e.get("by")) for e in entries):
        rows = AuditLog.select().where(
            (AuditLog.entity == "platzsuche")
            & (AuditLog.entity_id == str(search_id))
            & (AuditLog.action == "exclude_therapist")
        )
        for row in rows.order_by(AuditLog.at, AuditLog.id):
            details = row.details or {}
            if details.get("added"):
                added_by[details.get("therapist_id")] = row
    result = []
    for entry in entries:
        therapist_id = _entry_id(entry)
        data = entry if isinstance(entry, dict) else {}
        row = added_by.get(therapist_id)
        by = data.get("by") or (row.actor if row is not None else None)
        when = data.get("excluded_at") or (row.at.isoformat(timespec="seconds") if row else None)
        reason = data.get("reason") or (row.reason if row is not None else None)
        if by is None and reason:
            named = _REASON_ANFRAGE.search(reason)
            if named:
                answer = (
                    AuditLog.select(AuditLog.actor)
                    .where(
                        (AuditLog.entity == "therapeutenanfrage")
                        & (AuditLog.entity_id == named.group(1))
                        & (AuditLog.action == "record_response")
                    )
                    .order_by(AuditLog.at.desc(), AuditLog.id.desc())
                    .first()
                )
                by = answer.actor if answer is not None else None
        result.append(
            {"therapist_id": therapist_id, "reason": reason, "excluded_at": when, "by": by}
        )
    return result


def remove_exclusion(search_id: int, therapist_id: int, reason: str, *, actor="staff", now=None):
    """Remove one therapist's exclusion with a reason; ``NOT_EXCLUDED`` 409 (nothing written)
    when the therapist is not excluded from this search (e.g. removed a moment ago)."""
    now = now or utcnow()
    if not (reason or "").strip():
        raise OperationError("REASON_REQUIRED", "removing an exclusion needs a reason")
    with write_transaction():
        search = _search(search_id)
        before = list(search.ausgeschlossene_therapeuten or [])
        kept = [e for e in before if _entry_id(e) != therapist_id]
        if len(kept) == len(before):
            raise OperationError(
                "NOT_EXCLUDED",
                f"therapist {therapist_id} is not excluded from search {search_id}",
                status=409,
            )
        search.ausgeschlossene_therapeuten = kept
        search.save()
        audit.record(
            actor,
            "remove_exclusion",
            "platzsuche",
            search_id,
            {"therapist_id": therapist_id, "removed": len(before) - len(kept)},
            reason,
            at=now,
        )
    return len(before) != len(kept)
