"""What the console shows about one person (issue 15.2, spec §0 point 13): the record and
ONE timeline of everything that happened to it, newest first, in local time.

A patient's timeline: its searches (opened, placed, successful), the bundle lines that
offered it (created, sent, the therapist's answer per patient), the emails to it, the
inbound email replies and link clicks about its bundles, the calls about it or its
bundles, the staff notes of its searches, and the audit rows of the patient, its searches,
its emails and calls (placement steps among them). A therapist's: its Anfragen (created,
sent, reminded, answered), its emails, replies and clicks, its calls, its notes and those
of its Anfragen, the placements with it, and the audit rows of the therapist, its Anfragen,
emails and calls, and of the placement steps naming it.

Reads only. Every entry is a dict: ``at`` (naive UTC, for ordering), ``zeit`` (local
``TT.MM.JJJJ HH:MM``), ``kind`` (``search``, ``anfrage``, ``reply``, ``email``, ``call``,
``note``, ``audit``, ``placement``), ``event`` (what happened: ``search_opened``,
``line_added``, ``anfrage_sent``, ``answer``, ...; for ``audit`` the audit action) and the
event's data (ids, names, enum codes, texts). The console words them in German
(``console/people.py``); the codes stay codes here. Codes: ``PATIENT_NOT_FOUND`` /
``THERAPIST_NOT_FOUND`` (404), ``INVALID_PAGE``.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from db.models import (
    AuditLog,
    Email,
    InboundMessage,
    LinkKlick,
    Patient,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from psymatch import settings
from psymatch.domain import vocab

from .errors import OperationError

PAGE_SIZE = 20
MAX_PAGE_SIZE = 200

_NOTE = re.compile(r"\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}) \(([^)]*)\)\] ?(.*)")


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.get().TIMEZONE)


def local_text(at: dt.datetime | None) -> str:
    """A naive-UTC time as local ``TT.MM.JJJJ HH:MM``; '' for none."""
    if at is None:
        return ""
    return at.replace(tzinfo=dt.UTC).astimezone(_zone()).strftime("%d.%m.%Y %H:%M")


def date_text(day: dt.date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else ""


def _entry(at, kind: str, event: str, **params) -> dict | None:
    """One timeline entry; None when the event has no time (it did not happen)."""
    if at is None:
        return None
    if isinstance(at, dt.date) and not isinstance(at, dt.datetime):
        at = dt.datetime.combine(at, dt.time())
    return {"at": at, "zeit": local_text(at), "kind": kind, "event": event, **params}


def _person_name(*parts) -> str:
    return " ".join(p for p in parts if p)


def note_entries(text: str | None, where: str, where_id=None) -> list[dict]:
    """The lines ``[YYYY-MM-DD HH:MM (author)] text`` of a staff log (written in local
    time) as ``note`` entries; ``where`` is ``search``, ``anfrage`` or ``therapist``."""
    out = []
    for line in (text or "").splitlines():
        match = _NOTE.fullmatch(line.strip())
        if not match:
            continue
        local = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=_zone())
        at = local.astimezone(dt.UTC).replace(tzinfo=None)
        out.append(
            _entry(
                at,
                "note",
                "note",
                where=where,
                where_id=where_id,
                author=match.group(2),
                text=match.group(3),
            )
        )
    return out


# audit actions whose details the timeline shows; the others' details are not decrypted
DETAIL_ACTIONS = (
    "record_placement_outcome",
    "edit_patient",
    "edit_therapist",
    "set_potenziell_verfuegbar",
    "set_therapist_status",
)


def _audit_rows(keys: dict[str, list], keep=None) -> list:
    """Audit rows of the given (entity -> ids); ``details`` read (and decrypted) only for
    ``DETAIL_ACTIONS`` and for rows ``keep(row)`` has to look at (it filters them)."""
    columns = (
        AuditLog.id,
        AuditLog.at,
        AuditLog.actor,
        AuditLog.action,
        AuditLog.entity,
        AuditLog.entity_id,
        AuditLog.reason,
    )
    rows = []
    for entity, ids in keys.items():
        ids = [str(i) for i in ids]
        for start in range(0, len(ids), 500):
            where = (AuditLog.entity == entity) & AuditLog.entity_id.in_(ids[start : start + 500])
            if keep is not None:
                rows += [r for r in AuditLog.select().where(where) if keep(r)]
                continue
            found = list(AuditLog.select(*columns).where(where))
            wanted = [r.id for r in found if r.action in DETAIL_ACTIONS]
            details = (
                dict(
                    AuditLog.select(AuditLog.id, AuditLog.details)
                    .where(AuditLog.id.in_(wanted))
                    .tuples()
                )
                if wanted
                else {}
            )
            for row in found:
                row.details = details.get(row.id)
            rows += found
    return rows


def _audit_entries(keys: dict[str, list], keep=None) -> list[dict]:
    """``audit`` entries: action, actor, reason, the record, and what the timeline shows of
    the details (placement outcome, changed field names, status before and after)."""
    out = []
    for row in _audit_rows(keys, keep):
        details = row.details if isinstance(row.details, dict) else {}
        shown = {k: details[k] for k in ("outcome", "fields", "before", "after") if k in details}
        if row.action not in DETAIL_ACTIONS:
            shown = {}
        out.append(
            _entry(
                row.at,
                "audit",
                row.action,
                actor=row.actor,
                reason=row.reason,
                entity=row.entity,
                entity_id=row.entity_id,
                details=shown,
            )
        )
    return out


EMAIL_COLUMNS = (
    Email.id,
    Email.art,
    Email.status,
    Email.betreff,
    Email.gesendet_am,
    Email.in_warteschlange_am,
    Email.created_at,
    Email.antwort_erhalten,
    Email.antwortdatum,
)


def _email_entries(emails) -> list[dict]:
    out = []
    for email in emails:
        at = email.gesendet_am or email.in_warteschlange_am or email.created_at
        out.append(
            _entry(
                at,
                "email",
                "email",
                email_id=email.id,
                art=email.art,
                status=email.status,
                subject=email.betreff,
            )
        )
        if email.antwort_erhalten and email.antwortdatum:
            out.append(
                _entry(
                    email.antwortdatum,
                    "email",
                    "email_answered",
                    email_id=email.id,
                    subject=email.betreff,
                )
            )
    return out


def _call_entries(calls, names: dict[int, str]) -> list[dict]:
    out = []
    for call in calls:
        at = call.created_at
        if call.status != "geplant":
            at = call.updated_at
            if call.tatsaechliches_datum and call.tatsaechliche_zeit:
                local = dt.datetime.combine(
                    call.tatsaechliches_datum,
                    dt.datetime.strptime(call.tatsaechliche_zeit, "%H:%M").time(),
                    tzinfo=_zone(),
                )
                at = local.astimezone(dt.UTC).replace(tzinfo=None)
        out.append(
            _entry(
                at,
                "call",
                "call",
                call_id=call.id,
                therapist=names.get(call.therapist_id) if call.therapist_id else None,
                anfrage_id=call.therapeutenanfrage_id,
                day=call.geplantes_datum,
                time=call.geplante_zeit,
                status=call.status,
                result=call.ergebnis,
            )
        )
    return out


def _reply_entries(anfrage_ids: list[int], patient_id: int | None = None) -> list[dict]:
    out = []
    if not anfrage_ids:
        return out
    for inbound in InboundMessage.select(
        InboundMessage.id,
        InboundMessage.received_at,
        InboundMessage.status,
        InboundMessage.therapeutenanfrage,
    ).where(InboundMessage.therapeutenanfrage.in_(anfrage_ids)):
        out.append(
            _entry(
                inbound.received_at,
                "reply",
                "inbound",
                anfrage_id=inbound.therapeutenanfrage_id,
                status=inbound.status,
            )
        )
    clicks = LinkKlick.select().where(LinkKlick.therapeutenanfrage.in_(anfrage_ids))
    if patient_id is not None:
        clicks = clicks.where(LinkKlick.patient == patient_id)
    for click in clicks:
        out.append(
            _entry(
                click.clicked_at,
                "reply",
                "click",
                anfrage_id=click.therapeutenanfrage_id,
                patient_id=click.patient_id,
                answer=click.answer,
                status=click.status,
            )
        )
    return out


def _therapist_names(ids) -> dict[int, str]:
    ids = sorted({i for i in ids if i is not None})
    if not ids:
        return {}
    rows = Therapist.select(
        Therapist.id, Therapist.titel, Therapist.vorname, Therapist.nachname
    ).where(Therapist.id.in_(ids))
    return {t.id: _person_name(t.titel, t.vorname, t.nachname) for t in rows}


def _sorted(entries) -> list[dict]:
    return sorted((e for e in entries if e), key=lambda e: e["at"], reverse=True)


def patient_timeline_entries(patient_id: int) -> list[dict]:
    """Every timeline entry of one patient, newest first."""
    searches = list(Platzsuche.select().where(Platzsuche.patient == patient_id))
    lines = list(
        TherapeutAnfragePatient.select(TherapeutAnfragePatient, Therapeutenanfrage)
        .join(Therapeutenanfrage)
        .where(TherapeutAnfragePatient.patient == patient_id)
    )
    anfrage_ids = sorted({line.therapeutenanfrage_id for line in lines})
    calls = list(
        Telefonanruf.select().where(
            (Telefonanruf.patient == patient_id)
            | (Telefonanruf.therapeutenanfrage.in_(anfrage_ids or [0]))
        )
    )
    names = _therapist_names(
        [line.therapeutenanfrage.therapist_id for line in lines]
        + [s.vermittelter_therapeut_id for s in searches]
        + [c.therapist_id for c in calls]
    )
    out: list = []
    for search in searches:
        out.append(_entry(search.created_at, "search", "search_opened", search_id=search.id))
        out.append(
            _entry(
                search.erfolgreiche_vermittlung_datum,
                "placement",
                "search_successful",
                search_id=search.id,
                therapist=names.get(search.vermittelter_therapeut_id, ""),
            )
        )
        out += note_entries(search.notizen, "search", search.id)
    for line in lines:
        anfrage = line.therapeutenanfrage
        about = {"anfrage_id": anfrage.id, "therapist": names.get(anfrage.therapist_id, "")}
        out.append(
            _entry(
                anfrage.erstellt_datum,
                "anfrage",
                "line_added",
                search_id=line.platzsuche_id,
                position=line.position_in_anfrage,
                **about,
            )
        )
        out.append(_entry(anfrage.gesendet_datum, "anfrage", "anfrage_sent", **about))
        if line.antwortergebnis:
            out.append(
                _entry(
                    anfrage.antwort_datum or line.updated_at,
                    "reply",
                    "answer",
                    answer=line.antwortergebnis,
                    notes=line.antwortnotizen,
                    **about,
                )
            )
        elif line.status != "anstehend":
            out.append(
                _entry(line.updated_at, "anfrage", "line_status", status=line.status, **about)
            )
    emails = list(Email.select(*EMAIL_COLUMNS).where(Email.patient == patient_id))
    out += _email_entries(emails)
    out += _reply_entries(anfrage_ids, patient_id)
    out += _call_entries(calls, names)
    out += _audit_entries(
        {
            "patient": [patient_id],
            "platzsuche": [s.id for s in searches],
            "email": [e.id for e in emails],
            "telefonanruf": [c.id for c in calls if c.patient_id == patient_id],
        }
    )
    return _sorted(out)


def therapist_timeline_entries(therapist_id: int) -> list[dict]:
    """Every timeline entry of one therapist, newest first."""
    therapist = Therapist.get_by_id(therapist_id)
    anfragen = list(Therapeutenanfrage.select().where(Therapeutenanfrage.therapist == therapist_id))
    anfrage_ids = [a.id for a in anfragen]
    calls = list(Telefonanruf.select().where(Telefonanruf.therapist == therapist_id))
    out: list = []
    for anfrage in anfragen:
        out.append(
            _entry(
                anfrage.erstellt_datum,
                "anfrage",
                "anfrage_created",
                anfrage_id=anfrage.id,
                size=anfrage.anfragegroesse,
                trigger=anfrage.ausloeser,
            )
        )
        out.append(_entry(anfrage.gesendet_datum, "anfrage", "anfrage_sent", anfrage_id=anfrage.id))
        out.append(
            _entry(
                anfrage.erinnerung_gesendet_datum,
                "anfrage",
                "reminder_sent",
                anfrage_id=anfrage.id,
            )
        )
        if anfrage.antworttyp:
            out.append(
                _entry(
                    anfrage.antwort_datum,
                    "reply",
                    "anfrage_answered",
                    anfrage_id=anfrage.id,
                    answer_type=anfrage.antworttyp,
                    accepted=anfrage.angenommen_anzahl,
                    declined=anfrage.abgelehnt_anzahl,
                )
            )
        out += note_entries(anfrage.notizen, "anfrage", anfrage.id)
    # placements with this therapist: searches placed now, and those of accepted lines
    placed = {
        s.id: s
        for s in Platzsuche.select().where(Platzsuche.vermittelter_therapeut == therapist_id)
    }
    for search in placed.values():
        out.append(
            _entry(
                search.erfolgreiche_vermittlung_datum,
                "placement",
                "placement_successful",
                search_id=search.id,
                patient_id=search.patient_id,
            )
        )
    accepted = [
        line.platzsuche_id
        for line in TherapeutAnfragePatient.select(TherapeutAnfragePatient.platzsuche).where(
            TherapeutAnfragePatient.therapeutenanfrage.in_(anfrage_ids or [0])
            & TherapeutAnfragePatient.antwortergebnis.in_(vocab.ANNAHME_ERGEBNISSE)
        )
    ]
    placement_searches = sorted(set(placed) | set(accepted))
    emails = list(Email.select(*EMAIL_COLUMNS).where(Email.therapist == therapist_id))
    out += _email_entries(emails)
    out += _reply_entries(anfrage_ids)
    out += _call_entries(
        calls, {therapist_id: _person_name(therapist.titel, therapist.vorname, therapist.nachname)}
    )
    out += note_entries(therapist.notizen, "therapist", therapist_id)
    out += _audit_entries(
        {
            "therapist": [therapist_id],
            "therapeutenanfrage": anfrage_ids,
            "email": [e.id for e in emails],
            "telefonanruf": [c.id for c in calls],
        }
    )
    out += _audit_entries(
        {"platzsuche": placement_searches},
        keep=lambda row: (
            isinstance(row.details, dict) and row.details.get("therapist_id") == therapist_id
        ),
    )
    return _sorted(out)


def page_of(entries: list, page: int, page_size: int = PAGE_SIZE) -> dict:
    """One page (1-based) of a list: ``eintraege``, ``seite``, ``seiten``, ``gesamt``.
    A page past the end gives the last one; ``INVALID_PAGE`` for a page below 1 or a size
    outside 1..MAX_PAGE_SIZE."""
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise OperationError("INVALID_PAGE", f"invalid page {page!r}")
    if not isinstance(page_size, int) or isinstance(page_size, bool):
        raise OperationError("INVALID_PAGE", f"invalid page size {page_size!r}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise OperationError("INVALID_PAGE", f"page size must be 1 to {MAX_PAGE_SIZE}")
    pages = max(1, -(-len(entries) // page_size))
    page = min(page, pages)
    start = (page - 1) * page_size
    return {
        "eintraege": entries[start : start + page_size],
        "seite": page,
        "seiten": pages,
        "gesamt": len(entries),
    }


def _patient(patient_id) -> Patient:
    patient = Patient.by_id(patient_id)
    if patient is None:
        raise OperationError("PATIENT_NOT_FOUND", f"no patient {patient_id}", status=404)
    return patient


def _therapist(therapist_id) -> Therapist:
    therapist = Therapist.by_id(therapist_id)
    if therapist is None:
        raise OperationError("THERAPIST_NOT_FOUND", f"no therapist {therapist_id}", status=404)
    return therapist


def patient_timeline(patient_id: int, page: int = 1, page_size: int = PAGE_SIZE) -> dict:
    _patient(patient_id)
    return page_of(patient_timeline_entries(patient_id), page, page_size)


def therapist_timeline(therapist_id: int, page: int = 1, page_size: int = PAGE_SIZE) -> dict:
    _therapist(therapist_id)
    return page_of(therapist_timeline_entries(therapist_id), page, page_size)


def _timeline(entries: list[dict], page_size: int) -> dict:
    """The whole timeline (``entries``, for a console that pages it itself) and its first
    page (``timeline``)."""
    return {"entries": entries, "timeline": page_of(entries, 1, page_size)}


def patient_page(patient_id: int, page_size: int = PAGE_SIZE) -> dict:
    """A patient's record, searches and its timeline (all entries and the first page)."""
    patient = _patient(patient_id)
    searches = list(
        Platzsuche.select().where(Platzsuche.patient == patient_id).order_by(Platzsuche.id.desc())
    )
    active = [s.id for s in searches if s.status == "aktiv"]
    return {
        "art": "patient",
        "id": patient.id,
        "name": _person_name(patient.vorname, patient.nachname),
        "status": patient.status,
        "record": patient,
        "suchen": [
            {
                "id": s.id,
                "status": s.status,
                "eroeffnet": local_text(s.created_at),
                "vermittelter_therapeut_id": s.vermittelter_therapeut_id,
            }
            for s in searches
        ],
        # the search the Searches panel should open: the aktiv one, else the newest
        "suche_id": active[0] if active else (searches[0].id if searches else None),
        **_timeline(patient_timeline_entries(patient_id), page_size),
    }


def therapist_page(therapist_id: int, page_size: int = PAGE_SIZE) -> dict:
    """A therapist's record and its timeline (all entries and the first page)."""
    therapist = _therapist(therapist_id)
    return {
        "art": "therapeut",
        "id": therapist.id,
        "name": _person_name(therapist.titel, therapist.vorname, therapist.nachname),
        "status": therapist.status,
        "record": therapist,
        **_timeline(therapist_timeline_entries(therapist_id), page_size),
    }
