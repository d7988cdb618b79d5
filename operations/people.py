"""Person search for staff: patients and therapists by name, email, phone or PLZ (issue 15.2).

Patients' names, email and phone are encrypted at rest; they are found through
``patienten.suchindex`` (migration 0013), the keyed hashes of their normalised values
(psymatch/domain/people_search.py) under every key of ENCRYPTION_KEYS, so a search
decrypts only the rows it finds, and checks them again against the decrypted values (a
stale index never names someone who does not match). Therapists are plaintext: name,
email and PLZ are compared in SQL.
"""

from __future__ import annotations

from peewee import SQL, NodeList, Value, fn

from db import crypto
from db.database import is_postgres, write_transaction
from db.models import Patient, Therapist
from psymatch.domain.people_search import (
    index_text,
    index_word,
    name_tokens,
    query_terms,
    search_terms,
)

from .errors import OperationError

MAX_TEXT = 200
MAX_LIMIT = 500


def index_value(vorname, nachname, email, telefon) -> str | None:
    """A patient's ``suchindex`` under the newest key."""
    return index_text(search_terms(vorname, nachname, email, telefon), crypto.blind_index)


def refresh_index(patient_ids=None, batch: int = 500) -> int:
    """Recompute ``suchindex`` from the decrypted values (all patients, or ``patient_ids``)
    under the newest key: after an import, and in a key rotation. Returns the count."""
    query = Patient.select(
        Patient.id, Patient.vorname, Patient.nachname, Patient.email, Patient.telefon
    ).order_by(Patient.id)
    if patient_ids is not None:
        query = query.where(Patient.id.in_(list(patient_ids)))
    done = 0
    rows = list(query.tuples())
    for start in range(0, len(rows), batch):
        with write_transaction():
            for pid, vorname, nachname, email, telefon in rows[start : start + batch]:
                Patient.update(suchindex=index_value(vorname, nachname, email, telefon)).where(
                    Patient.id == pid
                ).execute()
        done += len(rows[start : start + batch])
    return done


def _index_matches(terms: list[str]):
    """WHERE clause: the patient's ``suchindex`` holds every term, under any key.

    PostgreSQL asks the full-text index of migration 0013; SQLite compares words."""
    alternatives = [sorted({index_word(d) for d in crypto.blind_indexes(t)}) for t in terms]
    if is_postgres():
        query = " & ".join("(" + " | ".join(words) + ")" for words in alternatives)
        return NodeList(
            (
                SQL("to_tsvector('simple'::regconfig, coalesce("),
                Patient.suchindex,
                SQL(", '')) @@ to_tsquery('simple'::regconfig,"),
                Value(query),
                SQL(")"),
            ),
            glue=" ",
        )
    where = None
    for words in alternatives:
        found = None
        for word in words:
            like = NodeList((Patient.suchindex, SQL("LIKE"), Value(f"% {word} %")))
            found = like if found is None else (found | like)
        where = found if where is None else (where & found)
    return where


def _name_start(column, word: str):
    """``lower(column) LIKE 'word%'`` (wildcards escaped), which the name indexes serve."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return NodeList((fn.LOWER(column), SQL("LIKE"), Value(escaped + "%"), SQL("ESCAPE '\\'")))


def _patient_matches(patient, kind: str, terms: list[str]) -> bool:
    """Whether the decrypted patient really matches (the index may be stale)."""
    if kind == "plz":
        return patient.plz == terms[0]
    return set(terms) <= set(
        search_terms(patient.vorname, patient.nachname, patient.email, patient.telefon)
    )


def _patients(kind: str, terms: list[str], limit: int) -> list[dict]:
    query = Patient.select(
        Patient.id,
        Patient.vorname,
        Patient.nachname,
        Patient.email,
        Patient.telefon,
        Patient.plz,
        Patient.ort,
        Patient.status,
    )
    if kind == "plz":
        query = query.where(Patient.plz == terms[0])
    else:
        query = query.where(_index_matches(terms))
    out = []
    for patient in query.order_by(Patient.id).limit(limit * 2 + 10):
        if _patient_matches(patient, kind, terms):
            out.append(
                {
                    "art": "patient",
                    "id": patient.id,
                    "name": " ".join(p for p in (patient.vorname, patient.nachname) if p),
                    "plz": patient.plz,
                    "ort": patient.ort,
                    "email": patient.email,
                    "telefon": patient.telefon,
                    "status": patient.status,
                }
            )
    return out[:limit]


def _therapists(kind: str, text: str, terms: list[str], limit: int) -> list[dict]:
    query = Therapist.select(
        Therapist.id,
        Therapist.titel,
        Therapist.vorname,
        Therapist.nachname,
        Therapist.email,
        Therapist.telefon,
        Therapist.plz,
        Therapist.ort,
        Therapist.status,
    )
    if kind == "plz":
        query = query.where(Therapist.plz == terms[0])
    elif kind == "email":
        query = query.where(fn.LOWER(fn.TRIM(Therapist.email)) == text.strip().lower())
    elif kind == "name":
        for word in [w for w in text.lower().split() if w]:
            query = query.where(
                _name_start(Therapist.nachname, word) | _name_start(Therapist.vorname, word)
            )
    else:
        return []
    return [
        {
            "art": "therapeut",
            "id": t.id,
            "name": " ".join(p for p in (t.titel, t.vorname, t.nachname) if p),
            "plz": t.plz,
            "ort": t.ort,
            "email": t.email,
            "telefon": t.telefon,
            "status": t.status,
        }
        for t in query.order_by(Therapist.nachname, Therapist.vorname, Therapist.id).limit(limit)
    ]


def find_people(text: str, limit: int = 50) -> list[dict]:
    """Patients, then therapists, whose name, email, phone or PLZ matches ``text``.

    A five-digit text is a PLZ, one with ``@`` an email address, digits with phone
    punctuation a phone number (patients only), anything else names: every word must be
    a whole name word of a patient (umlauts and accents folded), or the start of a
    therapist's first or last name. Reads only; ``OperationError`` (``INVALID_SEARCH``,
    ``INVALID_LIMIT``) for unusable input."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise OperationError("INVALID_LIMIT", f"limit must be 1 to {MAX_LIMIT}")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise OperationError("INVALID_SEARCH", f"search text must be 1 to {MAX_TEXT} characters")
    kind, terms = query_terms(text)
    if not terms or (kind == "name" and not name_tokens(text)):
        raise OperationError("INVALID_SEARCH", "search text holds no name, email, phone or PLZ")
    found = _patients(kind, terms, limit)
    if len(found) < limit:
        found += _therapists(kind, text, terms, limit - len(found))
    return found
