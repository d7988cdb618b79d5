"""Recording therapists' answers (docs/domain.md §9): one operation for email, phone and staff.

``record_response`` validates everything before it changes anything, then in
one transaction stores the outcome per patient, the counters and response type,
places accepted patients (first acceptance wins), marks their other pending
lines, excludes "not suitable" therapists, starts the therapist's cooling,
cancels planned calls and queues conflict notices through the outbox.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from peewee import SQL, fn

from db.database import write_transaction
from db.models import (
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
    utcnow,
)
from psymatch import settings
from psymatch.domain import vocab

from . import audit, notes, outbox
from .errors import OperationError
from .locks import bundling_lock
from .snapshot import local_today

ANSWERS = vocab.THERAPEUTENANTWORTEN
POST_ACCEPTANCE = vocab.NACH_ANNAHME
ACCEPTED_ANSWERS = vocab.ANNAHME_ERGEBNISSE


def _load_anfrage(anfrage_id) -> Therapeutenanfrage:
    anfrage = Therapeutenanfrage.locked_by_id(anfrage_id)
    if anfrage is None:
        raise OperationError("ANFRAGE_NOT_FOUND", f"no Anfrage A{anfrage_id}", status=404)
    return anfrage


def _parse_responses(responses: dict) -> dict[int, str]:
    parsed = {}
    for key, value in (responses or {}).items():
        patient_id = key if isinstance(key, int) and not isinstance(key, bool) else None
        if isinstance(key, str) and key.strip().isdigit():
            patient_id = int(key)
        if patient_id is None or value not in ANSWERS:
            raise OperationError(
                "INVALID_OUTCOME",
                f"patient {key!r}: {value!r} is not one of {', '.join(ANSWERS)}",
                details={"valid": list(ANSWERS)},
            )
        parsed[patient_id] = value
    return parsed


def exclusion_entry(
    therapist_id: int, now: dt.datetime, reason: str, by: str | None = None
) -> dict:
    entry = {"id": therapist_id, "excluded_at": now.isoformat(timespec="seconds"), "reason": reason}
    if by:
        entry["by"] = by  # who excluded (staff shown in the console's exclusion list)
    return entry


def add_exclusion(
    search: Platzsuche, therapist_id: int, now: dt.datetime, reason: str, *, by: str | None = None
) -> bool:
    """Add an object-form entry unless the therapist is already excluded (either form)."""
    entries = list(search.ausgeschlossene_therapeuten or [])
    for entry in entries:
        if (entry.get("id") if isinstance(entry, dict) else entry) == therapist_id:
            return False
    entries.append(exclusion_entry(therapist_id, now, reason, by))
    search.ausgeschlossene_therapeuten = entries
    return True


def mark_placed_elsewhere(search_id: int, except_anfrage_id: int | None) -> int:
    """The search's lines still anstehend in other pending Anfragen -> anderweitig_vermittelt.

    Whether a line's Anfrage is pending is asked per line (EXISTS, a primary-key probe):
    as ``IN (SELECT ... pending)`` SQLite listed every pending Anfrage for each call, 0.6 ms
    a call by the 26th simulated week and growing with the table."""
    line = TherapeutAnfragePatient
    pending = fn.EXISTS(
        Therapeutenanfrage.select(SQL("1")).where(
            (Therapeutenanfrage.id == line.therapeutenanfrage)
            & Therapeutenanfrage.antwort_datum.is_null()
        )
    )
    query = line.update(status="anderweitig_vermittelt", updated_at=utcnow()).where(
        (line.platzsuche == search_id) & (line.status == "anstehend") & pending
    )
    if except_anfrage_id is not None:
        query = query.where(line.therapeutenanfrage != except_anfrage_id)
    return query.execute()


def cancel_planned_calls(anfrage_id: int) -> int:
    return (
        Telefonanruf.update(status="abgebrochen", updated_at=utcnow())
        .where((Telefonanruf.therapeutenanfrage == anfrage_id) & (Telefonanruf.status == "geplant"))
        .execute()
    )


def start_cooling(therapist_id: int, now: dt.datetime) -> dt.date:
    """naechster_kontakt_moeglich := local date of the answer + 7 x COOLING_PERIOD_WEEKS days."""
    until = local_today(now) + dt.timedelta(days=7 * settings.get().COOLING_PERIOD_WEEKS)
    Therapist.update(naechster_kontakt_moeglich=until, updated_at=utcnow()).where(
        Therapist.id == therapist_id
    ).execute()
    return until


@dataclass
class ResponseResult:
    anfrage_id: int
    antworttyp: str
    angenommen_anzahl: int
    abgelehnt_anzahl: int
    keine_antwort_anzahl: int
    accepted: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    cooling_until: dt.date | None = None
    still_open: int = 0  # patients left pending by a partial answer

    def as_dict(self) -> dict:
        return {
            "anfrage_id": self.anfrage_id,
            "antworttyp": self.antworttyp,
            "angenommen_anzahl": self.angenommen_anzahl,
            "abgelehnt_anzahl": self.abgelehnt_anzahl,
            "keine_antwort_anzahl": self.keine_antwort_anzahl,
            "accepted": self.accepted,
            "conflicts": self.conflicts,
            "cooling_until": self.cooling_until.isoformat() if self.cooling_until else None,
            "still_open": self.still_open,
        }


OPEN_LINE = ("anstehend", "keine_antwort")


def _validate(anfrage: Therapeutenanfrage, rows, entries: dict[int, str], partial: bool) -> None:
    if anfrage.gesendet_datum is None:
        raise OperationError("ANFRAGE_NOT_SENT", f"A{anfrage.id} has not been sent yet")
    if anfrage.antwort_datum is not None and anfrage.antworttyp != "keine_Antwort":
        raise OperationError("ALREADY_ANSWERED", f"A{anfrage.id} was answered already", status=409)
    needed = {r.patient_id for r in rows if r.status in OPEN_LINE}
    missing = [] if partial else sorted(needed - set(entries))
    decided = sorted(
        r.patient_id for r in rows if r.patient_id in entries and r.antwortergebnis is not None
    )
    if decided:
        raise OperationError(
            "ALREADY_ANSWERED",
            f"patient(s) {decided} of A{anfrage.id} were answered already",
            status=409,
            details={"ids": decided},
        )
    if missing or not entries:
        raise OperationError(
            "MISSING_RESPONSES",
            f"answers missing for patient(s) {missing}" if missing else "no answer given",
            details={"ids": missing},
        )
    unknown = sorted(set(entries) - {r.patient_id for r in rows})
    if unknown:
        raise OperationError(
            "UNKNOWN_PATIENTS",
            f"patient(s) {unknown} are not in A{anfrage.id}",
            details={"ids": unknown},
        )


def record_response(
    anfrage_id: int,
    responses: dict,
    notizen: str | None = None,
    *,
    actor: str = "staff",
    now: dt.datetime | None = None,
    source: str = "manual",
    sender: str | None = None,
    partial: bool = False,
) -> ResponseResult:
    """Record a therapist's answer to an Anfrage (docs/domain.md §9.1).

    ``sender``: the From address of the email reply the answer came from (audit).
    ``partial``: answers for some patients only (docs/domain.md §0 point 14, a review item
    decided for some patients): those are recorded (acceptances place at once), the others
    stay pending with their follow-up, and the Anfrage counts as answered only once no
    patient is open any more. Without it every open patient needs an answer."""
    now = now or utcnow()
    with write_transaction():
        bundling_lock(shared=True)
        anfrage = _load_anfrage(anfrage_id)
        entries = _parse_responses(responses)
        rows = TherapeutAnfragePatient.lines_of(anfrage.id)
        _validate(anfrage, rows, entries, partial)
        # a later part of a partial answer gets its own follow-up emails (outbox keys)
        part = (
            ".".join(str(p) for p in sorted(entries))
            if any(r.antwortergebnis is not None for r in rows) or partial
            else None
        )
        therapist_id = anfrage.therapist_id
        row_by_patient = {r.patient_id: r for r in rows}
        search_ids = sorted(row_by_patient[p].platzsuche_id for p in entries)
        # locked one by one in id order, as an IN (...) ORDER BY id query would lock
        # them; a bundle's few searches read by id cost less than composing that query
        searches = {
            s.id: s
            for s in (Platzsuche.locked_by_id(search_id) for search_id in search_ids)
            if s is not None
        }
        # the lines again, now that their searches are locked: a status another answer
        # changed meanwhile is seen (answering one line changes no other line of this
        # Anfrage, so one read serves every answer below)
        locked_lines = {r.id: r for r in TherapeutAnfragePatient.lines_of(anfrage.id)}
        result = ResponseResult(anfrage.id, "", 0, 0, 0)
        for patient_id, answer in entries.items():
            row = locked_lines[row_by_patient[patient_id].id]
            search = searches[row.platzsuche_id]
            row.antwortergebnis = answer
            if answer == "angenommen":
                _accept(row, search, anfrage, therapist_id, now, actor, result)
            else:
                if row.status in ("anstehend", "keine_antwort"):
                    row.status = "abgelehnt"
                if answer == "abgelehnt_nicht_geeignet":
                    add_exclusion(
                        search,
                        therapist_id,
                        now,
                        f"abgelehnt_nicht_geeignet (A{anfrage.id})",
                        by=actor,
                    )
                    search.save()
            row.save()
        fresh = TherapeutAnfragePatient.lines_of(anfrage.id)
        still_open = sum(1 for r in fresh if r.status in OPEN_LINE and r.antwortergebnis is None)
        answered = [r.antwortergebnis for r in fresh if r.antwortergebnis is not None]
        accepted = sum(1 for a in answered if a == "angenommen")
        anfrage.angenommen_anzahl = accepted
        anfrage.abgelehnt_anzahl = len(answered) - accepted
        anfrage.keine_antwort_anzahl = len(rows) - len(answered)
        complete = not still_open
        if complete:
            anfrage.antworttyp = (
                "vollstaendige_Annahme"
                if accepted == anfrage.anfragegroesse
                else "teilweise_Annahme"
                if accepted
                else "vollstaendige_Ablehnung"
            )
            anfrage.antwort_datum = now
        summary = ", ".join(f"{p}: {a}" for p, a in entries.items())
        label = "Teilantwort" if not complete else "Antwort"
        anfrage.notizen = notes.append(
            anfrage.notizen, now, actor, f"{label} ({source}): {summary}"
        )
        if notizen:
            anfrage.notizen = notes.append(anfrage.notizen, now, actor, notizen)
        anfrage.save()
        result.antworttyp = anfrage.antworttyp or "offen"
        result.angenommen_anzahl = anfrage.angenommen_anzahl
        result.abgelehnt_anzahl = anfrage.abgelehnt_anzahl
        result.keine_antwort_anzahl = anfrage.keine_antwort_anzahl
        result.still_open = still_open
        result.cooling_until = start_cooling(therapist_id, now)
        _queue_follow_up_emails(anfrage.id, result, now, part)
        for accepted in result.accepted:  # the placement email at acceptance (§11.3)
            if accepted["placed"]:
                outbox.put(
                    "send_placement_email",
                    {"platzsuche_id": accepted["platzsuche_id"], "therapist_id": therapist_id},
                    outbox.key("vermittlung", f"{accepted['platzsuche_id']}.{therapist_id}"),
                    now=now,
                )
        if complete:  # the open patients' follow-up call stays planned
            cancel_planned_calls(anfrage.id)
        audit.record(
            actor,
            "record_response",
            "therapeutenanfrage",
            anfrage.id,
            {
                "source": source,
                "responses": {str(k): v for k, v in entries.items()},
                "antworttyp": anfrage.antworttyp,
                "conflicts": result.conflicts,
                **({"partial": True, "still_open": still_open} if partial else {}),
                **({"sender": sender} if sender is not None else {}),
            },
            at=now,
        )
    return result


def _accept(row, search, anfrage, therapist_id, now, actor, result) -> None:
    """First acceptance places the patient; a later one is a conflict (docs/domain.md §10)."""
    was_open = row.status in ("anstehend", "keine_antwort")
    placed_with = search.vermittelter_therapeut_id
    accepted = {"patient_id": row.patient_id, "platzsuche_id": search.id, "placed": False}
    result.accepted.append(accepted)
    if was_open and placed_with is None and search.status == "aktiv":
        row.status = "angenommen"
        accepted["placed"] = True
        search.vermittelter_therapeut = therapist_id
        search.notizen = notes.append(
            search.notizen,
            now,
            "system",
            f"Angenommen von Therapeut {therapist_id} (A{anfrage.id}); andere Anfragen bereinigt",
        )
        search.save()
        mark_placed_elsewhere(search.id, except_anfrage_id=anfrage.id)
        return
    if was_open and placed_with in (None, therapist_id):
        # Assigned to this therapist already, or a paused/ended search: stored, search unchanged.
        row.status = "angenommen"
        accepted["placed"] = placed_with == therapist_id
        return
    if was_open:
        row.status = "anderweitig_vermittelt"
    result.conflicts.append(
        {
            "patient_id": row.patient_id,
            "platzsuche_id": search.id,
            "placed_with": placed_with,
            "anfrage_id": anfrage.id,
        }
    )


def _queue_follow_up_emails(
    anfrage_id: int, result: ResponseResult, now, part: str | None = None
) -> None:
    """Outbox rows for the emails an answer causes: thanks for placed patients, and one
    conflict notice naming every patient that had found a place meanwhile (docs/domain.md §10).

    ``part`` names the patients of one part of a partial answer, so each part's emails are
    sent once (the outbox key) and a later part is not swallowed as a duplicate."""
    items = []
    if any(a["placed"] for a in result.accepted):
        items.append(
            (
                "send_acceptance_confirmation",
                {"anfrage_id": anfrage_id},
                outbox.key("annahme_bestaetigung", f"{anfrage_id}.{part}" if part else anfrage_id),
            )
        )
    if result.conflicts:
        patient_ids = [c["patient_id"] for c in result.conflicts]
        items.append(
            (
                "send_conflict_notice",
                {"anfrage_id": anfrage_id, "patient_ids": patient_ids},
                outbox.key("konflikt", f"{anfrage_id}.{part}" if part else anfrage_id),
            )
        )
    for task, payload, key in items:
        outbox.put(task, payload, key, now=now)


def record_patient_outcome(
    anfrage_id: int, patient_id: int, outcome: str, *, actor: str = "staff", now=None
) -> dict:
    """``in_Sitzungen`` or ``nicht_erschienen`` on an accepted line (docs/domain.md §11.1)."""
    now = now or utcnow()
    if outcome not in POST_ACCEPTANCE:
        raise OperationError(
            "INVALID_OUTCOME",
            f"{outcome!r} is not one of {', '.join(POST_ACCEPTANCE)}",
            details={"valid": list(POST_ACCEPTANCE)},
        )
    with write_transaction():
        bundling_lock(shared=True)
        anfrage = _load_anfrage(anfrage_id)
        row = TherapeutAnfragePatient.get_or_none(
            (TherapeutAnfragePatient.therapeutenanfrage == anfrage.id)
            & (TherapeutAnfragePatient.patient == patient_id)
        )
        if row is None or row.status != "angenommen":
            raise OperationError(
                "INVALID_STATE",
                f"patient {patient_id} has no accepted line in A{anfrage.id}",
                status=409,
            )
        row.antwortergebnis = outcome
        row.save()
        search = Platzsuche.locked_by_id(row.platzsuche_id)
        cleared = False
        if outcome == "nicht_erschienen":
            add_exclusion(search, anfrage.therapist_id, now, "nicht_erschienen", by=actor)
            if (
                search.vermittelter_therapeut_id == anfrage.therapist_id
                and search.status != "erfolgreich"
            ):
                search.vermittelter_therapeut = None
                cleared = True
                search.notizen = notes.append(
                    search.notizen,
                    now,
                    actor,
                    f"Nicht erschienen bei Therapeut {anfrage.therapist_id}: Suche geht weiter",
                )
            search.save()
        audit.record(
            actor,
            "record_patient_outcome",
            "therapeutenanfrage",
            anfrage.id,
            {"patient_id": patient_id, "outcome": outcome, "cleared": cleared},
            at=now,
        )
    return {
        "anfrage_id": anfrage.id,
        "patient_id": patient_id,
        "outcome": outcome,
        "placement_cleared": cleared,
    }


def close_without_response(
    anfrage_id: int, *, actor: str = "staff", now=None, automatic: bool = False
) -> dict:
    """Close a sent, pending Anfrage without an answer (docs/domain.md §11.2); no cooling.

    ``automatic``: the expiry run closes it (``operations.expiry``); the note and the audit
    row say so."""
    now = now or utcnow()
    with write_transaction():
        bundling_lock(shared=True)
        anfrage = _load_anfrage(anfrage_id)
        if anfrage.gesendet_datum is None or anfrage.antwort_datum is not None:
            raise OperationError(
                "INVALID_STATE", f"A{anfrage.id} is not sent and pending", status=409
            )
        TherapeutAnfragePatient.update(status="keine_antwort", updated_at=now).where(
            (TherapeutAnfragePatient.therapeutenanfrage == anfrage.id)
            & (TherapeutAnfragePatient.status == "anstehend")
        ).execute()
        anfrage.antworttyp = "keine_Antwort"
        anfrage.antwort_datum = now
        anfrage.angenommen_anzahl = anfrage.abgelehnt_anzahl = 0
        anfrage.keine_antwort_anzahl = anfrage.anfragegroesse
        text = "Ohne Antwort geschlossen" + (
            f" (automatisch nach {settings.get().ANFRAGE_EXPIRY_DAYS} Tagen)" if automatic else ""
        )
        anfrage.notizen = notes.append(anfrage.notizen, now, actor, text)
        anfrage.save()
        cancelled = cancel_planned_calls(anfrage.id)
        audit.record(
            actor,
            "close_without_response",
            "therapeutenanfrage",
            anfrage.id,
            {"calls_cancelled": cancelled, "automatic": automatic},
            at=now,
        )
    return {"anfrage_id": anfrage.id, "antworttyp": "keine_Antwort", "calls_cancelled": cancelled}


def list_conflicts() -> list[dict]:
    """Patients with two or more accepted answers (docs/domain.md §10), oldest conflict first."""
    query = (
        TherapeutAnfragePatient.select(
            TherapeutAnfragePatient.id,
            TherapeutAnfragePatient.patient,
            TherapeutAnfragePatient.platzsuche,
            Therapeutenanfrage.id,
            Therapeutenanfrage.therapist,
            Therapeutenanfrage.antwort_datum,
            Platzsuche.vermittelter_therapeut,
        )
        .join(Therapeutenanfrage)
        .switch(TherapeutAnfragePatient)
        .join(Platzsuche)
        .where(TherapeutAnfragePatient.antwortergebnis.in_(ACCEPTED_ANSWERS))
        .order_by(Therapeutenanfrage.antwort_datum, Therapeutenanfrage.id)
    )
    by_patient: dict[int, list] = {}
    placed: dict[int, int | None] = {}
    for row in query.tuples():
        line_id, patient_id, search_id, anfrage_id, therapist_id, answered, placed_with = row
        by_patient.setdefault(patient_id, []).append(
            {
                "line_id": line_id,
                "therapist_id": therapist_id,
                "anfrage_id": anfrage_id,
                "antwort_datum": answered,
                "platzsuche_id": search_id,
            }
        )
        placed[patient_id] = placed_with
    conflicts = []
    for patient_id, acceptances in by_patient.items():
        if len(acceptances) < 2:
            continue
        therapists = [a["therapist_id"] for a in acceptances]
        winner = placed[patient_id] if placed[patient_id] in therapists else therapists[0]
        conflicts.append(
            {
                "patient_id": patient_id,
                "acceptances": acceptances,
                "winner": winner,
                "conflict_count": len(acceptances) - 1,
            }
        )
    return conflicts
