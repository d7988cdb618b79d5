"""Read-only queries behind the console panels; they return plain lists and dicts.

Nothing here writes: every change goes through ``operations``.
"""

from __future__ import annotations

import datetime as dt

from peewee import JOIN, SQL, fn

from db.models import (
    InboundMessage,
    LinkKlick,
    Patient,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
    utcnow,
)
from operations import conflicts as conflict_ops
from operations.placements import awaiting_confirmation
from operations.replies import open_questions, stored_message


def _today(today: dt.date | None) -> dt.date:
    return today or utcnow().date()


def person(obj) -> str:
    """Display name of a patient or therapist."""
    if obj is None:
        return ""
    title = getattr(obj, "titel", None)
    return " ".join(p for p in (title, obj.vorname, obj.nachname) if p)


class SealedName:
    """A patient's name read as the stored Fernet tokens of its parts (``vorname``,
    ``nachname``), decrypted the first time it is shown (``str``, an f-string, a table cell)
    and kept from then on.

    The Searches list reads 20,000 names at Germany scale: decrypting them all was four
    fifths of its load time, while its paged table shows 25. Filtering the list by text
    reads every cell, and so decrypts every name, once."""

    __slots__ = ("_tokens", "_text")

    def __init__(self, vorname: str | None, nachname: str | None):
        self._tokens = (vorname, nachname)
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            vorname, nachname = self._tokens
            parts = (Patient.vorname.python_value(vorname), Patient.nachname.python_value(nachname))
            self._text = " ".join(p for p in parts if p)
            self._tokens = (None, None)
        return self._text

    def __repr__(self) -> str:
        return "SealedName(…)" if self._text is None else f"SealedName({self._text!r})"

    def __eq__(self, other) -> bool:
        if isinstance(other, SealedName | str):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


def waiting_days(created_at: dt.datetime, today: dt.date | None = None) -> int:
    return (_today(today) - created_at.date()).days


def calls_due(today: dt.date | None = None) -> list[dict]:
    """Planned calls with a date up to today, oldest first."""
    day = _today(today)
    query = (
        Telefonanruf.select(Telefonanruf, Therapist)
        .join(Therapist, on=(Telefonanruf.therapist == Therapist.id), join_type=JOIN.LEFT_OUTER)
        .where((Telefonanruf.status == "geplant") & (Telefonanruf.geplantes_datum <= day))
        .order_by(Telefonanruf.geplantes_datum, Telefonanruf.geplante_zeit, Telefonanruf.id)
    )
    return [
        {
            "call_id": c.id,
            "datum": c.geplantes_datum,
            "zeit": c.geplante_zeit,
            "therapist_id": c.therapist_id,
            "therapeut": person(c.therapist) if c.therapist_id else "",
            "telefon": c.therapist.telefon if c.therapist_id else None,
            "anfrage_id": c.therapeutenanfrage_id,
            "ueberfaellig": c.geplantes_datum < day,
        }
        for c in query
    ]


def review_evidence(message: InboundMessage) -> list[str]:
    """Why a reply was read as it was: the clauses and what each said, as stored with the
    message when it was processed (empty for replies processed before issue 17)."""
    decision = (message.result or {}).get("decision") or {}
    return list(decision.get("evidence") or [])


def reviews() -> list[dict]:
    """Items waiting for staff (status ``pruefung``), oldest first: email replies
    (``kind`` ``"email"``, keyed by ``inbound_id``) and one-click link answers (``kind``
    ``"klick"``, keyed by ``klick_id``, with the patient and the clicked ``answer``).
    ``received_at``, ``anfrage_id`` and ``reason`` are there for both kinds; email items
    also carry ``evidence`` (the words the reading rests on, ``review_evidence``)."""
    emails = (
        InboundMessage.select()
        .where(InboundMessage.status == "pruefung")
        .order_by(InboundMessage.received_at, InboundMessage.id)
    )
    items = [
        {
            "kind": "email",
            "inbound_id": m.id,
            "received_at": m.received_at,
            "sender": m.sender,
            "subject": m.subject,
            "anfrage_id": m.therapeutenanfrage_id,
            "reason": m.review_reason,
            # the therapist's words the reading rests on (reply_parse.Decision.evidence)
            "evidence": review_evidence(m),
        }
        for m in emails
    ]
    clicks = (
        LinkKlick.select(LinkKlick, Patient)
        .join(Patient)
        .where(LinkKlick.status == "pruefung")
        .order_by(LinkKlick.clicked_at, LinkKlick.id)
    )
    items += [
        {
            "kind": "klick",
            "klick_id": c.id,
            "received_at": c.clicked_at,
            "sender": None,
            "subject": None,
            "anfrage_id": c.therapeutenanfrage_id,
            "patient_id": c.patient_id,
            "patient": person(c.patient),
            "answer": c.answer,
            "reason": c.review_reason,
        }
        for c in clicks
    ]
    items.sort(key=lambda i: (i["received_at"], i["kind"], i.get("inbound_id") or i["klick_id"]))
    return items


def review_label(item: dict) -> str:
    """How the console names a review item: the reply's id, or "Klick <id>"."""
    return str(item["inbound_id"]) if item["kind"] == "email" else f"Klick {item['klick_id']}"


def review_origin(item: dict) -> str:
    """Who a review item comes from: the reply's sender, or the clicked link's patient and
    answer."""
    if item["kind"] == "email":
        return item["sender"] or ""
    return f"Link-Klick für Patient {item['patient_id']} {item['patient']}: {item['answer']}"


def reply_text(inbound_id: int, limit: int = 4000) -> str:
    """The text of a stored reply: its decoded message, else the raw payload as stored."""
    message = InboundMessage.get_by_id(inbound_id)
    try:
        decoded = stored_message(message)
    except Exception:  # a damaged stored message is shown raw
        decoded = None
    text = decoded.text if decoded is not None else (message.raw_payload or "")
    return text[:limit]


def conflicts(state: str = "offen") -> list[dict]:
    """``operations.conflicts.conflicts(state)`` (default: the open ones) with therapist and
    patient names, and the alternatives its notices offered (``alternativen``)."""
    found = conflict_ops.conflicts(state)
    ids = {a["therapist_id"] for c in found for a in c["acceptances"]}
    names = {t.id: person(t) for t in Therapist.select().where(Therapist.id.in_(list(ids)))}
    patients = {
        p.id: person(p)
        for p in Patient.select().where(Patient.id.in_([c["patient_id"] for c in found]))
    }
    offered = conflict_ops.alternatives([a for c in found for a in c["alternativen_anfragen"]])
    out = []
    for c in found:
        acceptances = [
            {**a, "therapeut": names.get(a["therapist_id"], "")} for a in c["acceptances"]
        ]
        mine = set(c["alternativen_anfragen"])
        out.append(
            {
                **c,
                "patient": patients.get(c["patient_id"], ""),
                "acceptances": acceptances,
                "winner_name": names.get(c["winner"], ""),
                "placed_name": names.get(c["vermittelt_an"], ""),
                "alternativen": [row for row in offered if row["anfrage_id"] in mine],
            }
        )
    return out


def unsent_bundles() -> list[dict]:
    """Anfragen created but not sent yet, oldest first."""
    query = (
        Therapeutenanfrage.select(Therapeutenanfrage, Therapist)
        .join(Therapist)
        .where(Therapeutenanfrage.gesendet_datum.is_null())
        .order_by(Therapeutenanfrage.erstellt_datum, Therapeutenanfrage.id)
    )
    return [
        {
            "anfrage_id": a.id,
            "therapist_id": a.therapist_id,
            "therapeut": person(a.therapist),
            "groesse": a.anfragegroesse,
            "erstellt": a.erstellt_datum,
        }
        for a in query
    ]


def _in_pending_bundle():
    """The search sits in a pending (unanswered) Anfrage as a pending row.

    A correlated EXISTS, so PostgreSQL plans an anti-join; ``NOT IN (subquery)``
    took seconds once a few thousand bundles were open."""
    return fn.EXISTS(
        TherapeutAnfragePatient.select(SQL("1"))
        .join(Therapeutenanfrage)
        .where(
            (TherapeutAnfragePatient.platzsuche == Platzsuche.id)
            & (TherapeutAnfragePatient.status == "anstehend")
            & Therapeutenanfrage.antwort_datum.is_null()
        )
    )


# What a search row shows: the search and the patient's name and PLZ. Selecting only these
# keeps the listing from decrypting the patient's other sealed fields and the notes
# (db/crypto.py: every encrypted value read is a Fernet decryption).
_SEARCH_COLUMNS = (
    Platzsuche.id,
    Platzsuche.patient,
    Platzsuche.status,
    Platzsuche.created_at,
    Platzsuche.ausgeschlossene_therapeuten,
    Platzsuche.vermittelter_therapeut,
)
SEARCH_ROW_FIELDS = (
    *_SEARCH_COLUMNS,
    Patient.id,
    Patient.vorname,
    Patient.nachname,
    Patient.plz,
)


def waiting_without_bundle(today: dt.date | None = None, limit: int = 10) -> list[dict]:
    """Aktiv searches in no pending bundle, longest waiting first."""
    query = (
        Platzsuche.select(*SEARCH_ROW_FIELDS)
        .join(Patient)
        .where(
            (Platzsuche.status == "aktiv")
            & Platzsuche.vermittelter_therapeut.is_null()
            & ~_in_pending_bundle()
        )
        .order_by(Platzsuche.created_at, Platzsuche.id)
        .limit(limit)
    )
    return [_search_row(s, today) for s in query]


def _search_row(s: Platzsuche, today: dt.date | None) -> dict:
    return {
        "search_id": s.id,
        "patient_id": s.patient_id,
        "patient": person(s.patient),
        "plz": s.patient.plz,
        "status": s.status,
        "wartetage": waiting_days(s.created_at, today),
        "ausschluesse": len(s.ausgeschlossene_therapeuten or []),
        "vermittelt_an": s.vermittelter_therapeut_id,
    }


def new_answers(now: dt.datetime | None = None, hours: int = 48, limit: int = 50) -> list[dict]:
    """Anfragen answered in the last ``hours`` (any channel), newest first."""
    now = now or utcnow()
    query = (
        Therapeutenanfrage.select(Therapeutenanfrage, Therapist)
        .join(Therapist)
        .where(
            Therapeutenanfrage.antwort_datum.is_null(False)
            & (Therapeutenanfrage.antwort_datum >= now - dt.timedelta(hours=hours))
            & (Therapeutenanfrage.antworttyp != "keine_Antwort")
        )
        .order_by(Therapeutenanfrage.antwort_datum.desc(), Therapeutenanfrage.id.desc())
        .limit(limit)
    )
    return [
        {
            "anfrage_id": a.id,
            "therapist_id": a.therapist_id,
            "therapeut": person(a.therapist),
            "antworttyp": a.antworttyp,
            "angenommen": a.angenommen_anzahl,
            "abgelehnt": a.abgelehnt_anzahl,
            "beantwortet": a.antwort_datum,
        }
        for a in query
    ]


def placements_open(now: dt.datetime | None = None) -> list[dict]:
    """Accepted patients whose initial-session outcome is not confirmed yet (§0.10)."""
    rows = awaiting_confirmation(now)
    patients = {
        p.id: person(p)
        for p in Patient.select(Patient.id, Patient.vorname, Patient.nachname).where(
            Patient.id.in_([r["patient_id"] for r in rows])
        )
    }
    names = therapist_names(r["therapist_id"] for r in rows)
    return [
        {
            **r,
            "patient": patients.get(r["patient_id"], ""),
            "therapeut": names.get(r["therapist_id"], ""),
        }
        for r in rows
    ]


def today_summary(
    today: dt.date | None = None, limit: int = 10, now: dt.datetime | None = None
) -> dict:
    """Everything the Today panel shows, as plain data."""
    return {
        "calls": calls_due(today),
        "answers": new_answers(now),
        "questions": open_questions(now),
        "reviews": reviews(),
        "conflicts": conflicts(),
        "placements": placements_open(now),
        "unsent": unsent_bundles(),
        "waiting": waiting_without_bundle(today, limit),
    }


def search_rows(
    statuses=("aktiv", "pausiert"),
    plz_prefix: str = "",
    today: dt.date | None = None,
    longest_first: bool = True,
) -> list[dict]:
    """Searches filtered by status and patient PLZ prefix, sorted by waiting time.

    ``patient`` is a ``SealedName``: decrypted only when it is shown."""
    query = Platzsuche.select(
        *_SEARCH_COLUMNS,
        Patient.vorname.coerce(False),  # the stored tokens, decrypted by SealedName
        Patient.nachname.coerce(False),
        Patient.plz,
    ).join(Patient)
    if statuses:
        query = query.where(Platzsuche.status.in_(list(statuses)))
    prefix = (plz_prefix or "").strip()
    if prefix:
        query = query.where(Patient.plz.startswith(prefix))
    order = Platzsuche.created_at if longest_first else Platzsuche.created_at.desc()
    query = query.order_by(order, Platzsuche.id)
    # plain tuples: building two model objects per row cost more than the query for 20k
    day = _today(today)
    return [
        {
            "search_id": sid,
            "patient_id": pid,
            "patient": SealedName(vorname, nachname),
            "plz": plz,
            "status": status,
            "wartetage": (day - created.date()).days,
            "ausschluesse": len(excluded or []),
            "vermittelt_an": placed,
        }
        for sid, pid, status, created, excluded, placed, vorname, nachname, plz in query.tuples()
    ]


def anfrage_lines(anfrage_id: int) -> dict | None:
    """An Anfrage with its patient rows, or None when there is no such Anfrage."""
    anfrage = Therapeutenanfrage.by_id(anfrage_id)
    if anfrage is None:
        return None
    rows = (
        TherapeutAnfragePatient.select(TherapeutAnfragePatient, Patient)
        .join(Patient)
        .where(TherapeutAnfragePatient.therapeutenanfrage == anfrage_id)
        .order_by(TherapeutAnfragePatient.position_in_anfrage)
    )
    return {
        "anfrage_id": anfrage.id,
        "therapist_id": anfrage.therapist_id,
        "therapeut": person(anfrage.therapist),
        "gesendet": anfrage.gesendet_datum,
        "antwort_datum": anfrage.antwort_datum,
        "antworttyp": anfrage.antworttyp,
        "lines": [
            {
                "patient_id": r.patient_id,
                "patient": person(r.patient),
                "status": r.status,
                "antwortergebnis": r.antwortergebnis,
            }
            for r in rows
        ],
    }


def therapist_names(ids) -> dict[int, str]:
    """Display names of the given therapists, by id."""
    ids = list(set(ids))
    if not ids:
        return {}
    return {t.id: person(t) for t in Therapist.select().where(Therapist.id.in_(ids))}


def cooling_therapists(today: dt.date | None = None) -> list[dict]:
    """Therapists cooling past today, soonest contactable first (docs/domain.md §5)."""
    day = _today(today)
    query = (
        Therapist.select(  # only what is shown: no sealed notes decrypted for thousands
            Therapist.id,
            Therapist.titel,
            Therapist.vorname,
            Therapist.nachname,
            Therapist.plz,
            Therapist.naechster_kontakt_moeglich,
        )
        .where(Therapist.naechster_kontakt_moeglich > day)
        .order_by(Therapist.naechster_kontakt_moeglich, Therapist.id)
    )
    return [
        {
            "therapist_id": t.id,
            "therapeut": person(t),
            "plz": t.plz,
            "naechster_kontakt": t.naechster_kontakt_moeglich,
            "tage": (t.naechster_kontakt_moeglich - day).days,
        }
        for t in query
    ]
