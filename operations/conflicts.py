"""Conflicts staff settle: a patient accepted by two or more therapists (docs/domain.md
§10; spec §0 point 6, §11.5; issue 15 points 3 and 6).

A conflict is derived from the bundle lines (``responses.list_conflicts``); how staff
settled it is a ``KonfliktErledigung`` row per search: who, when, how, and which accepted
lines it covered. A later acceptance on the same search opens the conflict again.

- ``settle_conflict`` closes it without changing the placement ("erste Zusage bestätigt"
  or "anders geklärt" with a note);
- ``reassign_conflict`` gives the patient to another accepting therapist: the lines, the
  search and the settlement change in one transaction, which also queues the emails that
  match the final state (the new therapist a confirmation, the former one a withdrawal, the
  patient the placement email naming the new therapist). The caller names the therapist
  it showed as placed, so a repeated click (or a stale screen) is refused and writes
  nothing; the emails are keyed by the reassignment's number, so none goes out twice,
  and a patient given back and forth (A to B, back to A, to B again) hears of every
  change: the email of one reassignment never stands in for another's.

Every refusal raises ``OperationError`` with its code before anything is written.
"""

from __future__ import annotations

import datetime as dt

from db.database import write_transaction
from db.models import (
    Email,
    EmailInhalt,
    KonfliktErledigung,
    OutboxItem,
    Patient,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
    utcnow,
)
from operations.emailing import headers as email_headers
from operations.emailing import render
from operations.emailing.data import patient_info, therapist_info
from operations.emailing.headers import outbox_key
from operations.emailing.queue import outbox_send, queue_email
from psymatch.domain import vocab

from . import audit, notes, outbox, sending
from .errors import OperationError
from .locks import bundling_lock
from .placements import placement_keys
from .responses import ACCEPTED_ANSWERS, list_conflicts, mark_placed_elsewhere
from .snapshot import local_today
from .therapist_contact import usable_email

STATES = ("offen", "erledigt", "alle")
SETTLE_HOWS = (vocab.GEWINNER_BESTAETIGT, vocab.KONFLIKT_SONSTIGES)
NOTE_MAX_LENGTH = 2000


# --- input ----------------------------------------------------------------------------------


def _actor(actor) -> str:
    try:
        return audit.actor_name(actor)
    except ValueError as error:
        raise OperationError(
            "ACTOR_REQUIRED", f"Wer handelt, muss genannt sein ({error})"
        ) from None


def _note(notiz) -> str | None:
    if notiz is None:
        return None
    if not isinstance(notiz, str):
        raise OperationError("INVALID_NOTE", "Die Notiz muss ein Text sein")
    notiz = notiz.strip()
    if len(notiz) > NOTE_MAX_LENGTH:
        raise OperationError(
            "NOTE_TOO_LONG",
            f"Die Notiz hat {len(notiz)} Zeichen, erlaubt sind höchstens {NOTE_MAX_LENGTH}",
            details={"max": NOTE_MAX_LENGTH},
        )
    return notiz or None


def _id(value, code: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OperationError(code, f"{what} {value!r} ist keine gültige Nummer")
    return value


def _search(search_id) -> Platzsuche:
    search_id = _id(search_id, "PLATZSUCHE_NOT_FOUND", "Suche")
    search = Platzsuche.locked_by_id(search_id)
    if search is None:
        raise OperationError("PLATZSUCHE_NOT_FOUND", f"Suche {search_id} gibt es nicht", status=404)
    return search


def _accepted_lines(search_id: int) -> list[tuple[TherapeutAnfragePatient, int]]:
    """(line, therapist id) of every accepted answer for the search, oldest answer first."""
    query = (
        TherapeutAnfragePatient.select(TherapeutAnfragePatient, Therapeutenanfrage)
        .join(Therapeutenanfrage)
        .where(
            (TherapeutAnfragePatient.platzsuche == search_id)
            & TherapeutAnfragePatient.antwortergebnis.in_(ACCEPTED_ANSWERS)
        )
        .order_by(Therapeutenanfrage.antwort_datum, Therapeutenanfrage.id)
    )
    return [(line, line.therapeutenanfrage.therapist_id) for line in query]


def _conflict_lines(search: Platzsuche) -> list[tuple[TherapeutAnfragePatient, int]]:
    lines = _accepted_lines(search.id)
    if len({therapist for _, therapist in lines}) < 2:
        raise OperationError(
            "NO_CONFLICT",
            f"Suche {search.id} hat keinen Konflikt (keine zwei Zusagen)",
            status=409,
        )
    return lines


def _is_settled(row: KonfliktErledigung | None, line_ids) -> bool:
    return row is not None and set(line_ids) <= set(row.zeilen or [])


# --- listing --------------------------------------------------------------------------------


def _settlement_dict(row: KonfliktErledigung) -> dict:
    return {
        "art": row.art,
        "label": vocab.KONFLIKT_ERLEDIGUNG_LABELS[row.art],
        "therapist_id": row.therapist_id,
        "erledigt_am": row.erledigt_am,
        "erledigt_von": row.erledigt_von,
        "notiz": row.notiz,
        "umzuweisungen": row.umzuweisungen,
    }


def conflicts(state: str = "offen") -> list[dict]:
    """``list_conflicts()`` with the search, its placement and the settlement; ``state``
    ``offen`` (default: what staff still have to look at), ``erledigt`` or ``alle``.

    Each conflict also names the alternatives Anfragen its conflict notices created
    (``alternativen_anfragen``: ids, oldest first)."""
    if state not in STATES:
        raise OperationError(
            "INVALID_FILTER",
            f"{state!r} ist keiner der Filter {', '.join(STATES)}",
            details={"valid": list(STATES)},
        )
    found = list_conflicts()
    for conflict in found:
        conflict["platzsuche_id"] = conflict["acceptances"][-1]["platzsuche_id"]
    search_ids = [c["platzsuche_id"] for c in found]
    settled = {
        row.platzsuche_id: row
        for row in KonfliktErledigung.select().where(KonfliktErledigung.platzsuche.in_(search_ids))
    }
    searches = {
        sid: (placed, status)
        for sid, placed, status in Platzsuche.select(
            Platzsuche.id, Platzsuche.vermittelter_therapeut, Platzsuche.status
        )
        .where(Platzsuche.id.in_(search_ids))
        .tuples()
    }
    anfrage_ids = [a["anfrage_id"] for c in found for a in c["acceptances"]]
    alternatives: dict[int, list[int]] = {}
    for alt_id, origin in (
        Therapeutenanfrage.select(Therapeutenanfrage.id, Therapeutenanfrage.konflikt_anfrage_id)
        .where(Therapeutenanfrage.konflikt_anfrage_id.in_(anfrage_ids))
        .order_by(Therapeutenanfrage.id)
        .tuples()
    ):
        alternatives.setdefault(origin, []).append(alt_id)
    out = []
    for conflict in found:
        row = settled.get(conflict["platzsuche_id"])
        done = _is_settled(row, [a["line_id"] for a in conflict["acceptances"]])
        if state != "alle" and done != (state == "erledigt"):
            continue
        placed, status = searches.get(conflict["platzsuche_id"], (None, None))
        conflict.update(
            state="erledigt" if done else "offen",
            erledigung=_settlement_dict(row) if row is not None else None,
            vermittelt_an=placed,
            suchstatus=status,
            alternativen_anfragen=[
                alt
                for a in conflict["acceptances"]
                for alt in alternatives.get(a["anfrage_id"], [])
            ],
        )
        out.append(conflict)
    return out


def alternatives(anfrage_ids: list[int]) -> list[dict]:
    """The patients the alternatives Anfragen offer: per line the Anfrage, therapist,
    patient, age and symptoms (decrypted here, for staff), distance and waiting days from
    the selection's explanation, and the line's status and answer."""
    if not anfrage_ids:
        return []
    query = (
        TherapeutAnfragePatient.select(TherapeutAnfragePatient, Therapeutenanfrage, Patient)
        .join(Therapeutenanfrage)
        .switch(TherapeutAnfragePatient)
        .join(Patient)
        .where(TherapeutAnfragePatient.therapeutenanfrage.in_(list(anfrage_ids)))
        .order_by(Therapeutenanfrage.id, TherapeutAnfragePatient.position_in_anfrage)
    )
    out = []
    for line in query:
        why = line.auswahl or {}
        patient = line.patient
        out.append(
            {
                "anfrage_id": line.therapeutenanfrage_id,
                "therapist_id": line.therapeutenanfrage.therapist_id,
                "patient_id": patient.id,
                "platzsuche_id": line.platzsuche_id,
                "geburtsdatum": patient.geburtsdatum,
                "symptome": list(patient.symptome or []),
                "distance_km": why.get("distance_km"),
                "waiting_days": why.get("waiting_days"),
                "status": line.status,
                "antwortergebnis": line.antwortergebnis,
            }
        )
    return out


# --- settling -------------------------------------------------------------------------------


def _write_settlement(
    search: Platzsuche, lines, art: str, therapist_id, actor: str, notiz, now, *, reassign: bool
) -> KonfliktErledigung:
    row = KonfliktErledigung.get_or_none(KonfliktErledigung.platzsuche == search.id)
    if row is None:
        row = KonfliktErledigung(platzsuche=search.id, umzuweisungen=0)
    row.art = art
    row.therapist_id = therapist_id
    row.erledigt_am = now
    row.erledigt_von = actor
    row.notiz = notiz
    row.zeilen = sorted(line.id for line, _ in lines)
    if reassign:
        row.umzuweisungen = (row.umzuweisungen or 0) + 1
    row.save()
    return row


def settle_conflict(
    platzsuche_id: int,
    art: str = vocab.GEWINNER_BESTAETIGT,
    *,
    actor: str,
    notiz: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Mark a search's conflict settled without changing its placement.

    ``art``: ``gewinner_bestaetigt`` (the placed therapist keeps the patient; the search
    must be placed) or ``sonstiges`` (settled otherwise, e.g. by phone; a note is
    required). Codes: ``ACTOR_REQUIRED``, ``INVALID_HOW``, ``NOTE_REQUIRED``,
    ``NOTE_TOO_LONG``, ``PLATZSUCHE_NOT_FOUND`` 404, ``NO_CONFLICT`` 409,
    ``ALREADY_SETTLED`` 409 (nothing new since it was settled), ``NOT_PLACED`` 409."""
    now = now or utcnow()
    actor = _actor(actor)
    if art not in SETTLE_HOWS:
        raise OperationError(
            "INVALID_HOW",
            f"{art!r} ist keine der Erledigungsarten {', '.join(SETTLE_HOWS)} "
            "(neu zuweisen: reassign_conflict)",
            details={"valid": list(SETTLE_HOWS)},
        )
    notiz = _note(notiz)
    if art == vocab.KONFLIKT_SONSTIGES and not notiz:
        raise OperationError("NOTE_REQUIRED", "Bitte kurz notieren, wie der Konflikt geklärt wurde")
    with write_transaction():
        bundling_lock(shared=True)
        search = _search(platzsuche_id)
        lines = _conflict_lines(search)
        row = KonfliktErledigung.get_or_none(KonfliktErledigung.platzsuche == search.id)
        if _is_settled(row, [line.id for line, _ in lines]):
            raise OperationError(
                "ALREADY_SETTLED",
                f"Der Konflikt zu Suche {search.id} ist bereits erledigt "
                f"({row.erledigt_von}); es wurde nichts geändert",
                status=409,
            )
        placed = search.vermittelter_therapeut_id
        if art == vocab.GEWINNER_BESTAETIGT and placed is None:
            raise OperationError(
                "NOT_PLACED",
                f"Suche {search.id} ist niemandem zugewiesen: nichts zu bestätigen",
                status=409,
            )
        row = _write_settlement(search, lines, art, placed, actor, notiz, now, reassign=False)
        label = vocab.KONFLIKT_ERLEDIGUNG_LABELS[art]
        search.notizen = notes.append(
            search.notizen,
            now,
            actor,
            f"Konflikt erledigt: {label}" + (f" ({notiz})" if notiz else ""),
        )
        search.updated_at = now
        search.save()
        audit.record(
            actor,
            "settle_conflict",
            "platzsuche",
            search.id,
            {"art": art, "therapist_id": placed, "zeilen": row.zeilen},
            notiz,
            at=now,
        )
    return {"platzsuche_id": search.id, "art": art, "therapist_id": placed}


def reassignment_keys(search_id: int, number: int) -> dict[str, str]:
    """Outbox keys of the emails of one reassignment (its number ``umzuweisungen``)."""
    return {
        "zusage": outbox.key("umzuweisung_zusage", f"{search_id}.{number}"),
        "ruecknahme": outbox.key("umzuweisung_ruecknahme", f"{search_id}.{number}"),
    }


def reassign_conflict(
    platzsuche_id: int,
    therapist_id: int,
    *,
    shown_therapist_id: int | None,
    actor: str,
    notiz: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Give a conflict's patient to another therapist who accepted it (docs/domain.md §12
    manual assignment, as a conflict override), and settle the conflict.

    ``shown_therapist_id``: the therapist the caller showed as placed; if the placement
    is another one by now, nothing happens (``STALE``). Effects in one transaction: the
    former therapist's accepted line -> ``anderweitig_vermittelt`` (its answer stays
    ``angenommen``), the new one's -> ``angenommen``, the search placed with the new
    therapist (other pending lines marked), the settlement ``neu_zugewiesen``, the
    patient's unsent placement email naming the former therapist withdrawn, and outbox
    rows for the confirmation to the new therapist, the withdrawal to the former one and
    the placement email to the patient.

    Codes: ``ACTOR_REQUIRED``, ``NOTE_TOO_LONG``, ``PLATZSUCHE_NOT_FOUND`` 404,
    ``THERAPIST_NOT_FOUND`` 404, ``NO_CONFLICT`` 409, ``ALREADY_ASSIGNED`` 409 (the patient
    is placed with that therapist: a repeated click), ``STALE`` 409, ``NOT_AN_ACCEPTANCE``
    (that therapist did not accept the patient), ``THERAPIST_LOCKED`` 409 (search
    ``erfolgreich``), ``SEARCH_NOT_ACTIVE`` 409, ``THERAPIST_INACTIVE`` 409."""
    now = now or utcnow()
    actor = _actor(actor)
    notiz = _note(notiz)
    therapist_id = _id(therapist_id, "THERAPIST_NOT_FOUND", "Therapeut")
    with write_transaction():
        bundling_lock(shared=True)
        search = _search(platzsuche_id)
        therapist = Therapist.by_id(therapist_id)
        if therapist is None:
            raise OperationError(
                "THERAPIST_NOT_FOUND", f"Therapeut {therapist_id} gibt es nicht", status=404
            )
        lines = _conflict_lines(search)
        former = search.vermittelter_therapeut_id
        if former == therapist_id:
            raise OperationError(
                "ALREADY_ASSIGNED",
                f"Suche {search.id} ist Therapeut {therapist_id} bereits zugewiesen; "
                "es wurde nichts geändert",
                status=409,
            )
        if former != shown_therapist_id:
            raise OperationError(
                "STALE",
                f"Suche {search.id} ist inzwischen "
                + (f"Therapeut {former}" if former else "niemandem")
                + " zugewiesen (angezeigt war "
                + (f"Therapeut {shown_therapist_id}" if shown_therapist_id else "niemand")
                + "); bitte neu laden, es wurde nichts geändert",
                status=409,
                details={"vermittelt_an": former},
            )
        target = [line for line, t in lines if t == therapist_id]
        if not target:
            raise OperationError(
                "NOT_AN_ACCEPTANCE",
                f"Therapeut {therapist_id} hat für Suche {search.id} nicht zugesagt",
            )
        if search.status == "erfolgreich":
            raise OperationError(
                "THERAPIST_LOCKED",
                f"Suche {search.id} ist erfolgreich abgeschlossen und behält ihren Therapeuten",
                status=409,
            )
        if search.status != "aktiv":
            raise OperationError(
                "SEARCH_NOT_ACTIVE", f"Suche {search.id} ist {search.status}", status=409
            )
        if therapist.status != "aktiv":
            raise OperationError(
                "THERAPIST_INACTIVE",
                f"Therapeut {therapist_id} ist {therapist.status}",
                status=409,
            )
        former_lines = [line for line, t in lines if t == former and line.status == "angenommen"]
        for line in former_lines:
            line.status = "anderweitig_vermittelt"
            line.updated_at = now
            line.save()
        new_line = target[-1]
        new_line.status = "angenommen"
        new_line.updated_at = now
        new_line.save()
        search.vermittelter_therapeut = therapist_id
        search.notizen = notes.append(
            search.notizen,
            now,
            actor,
            f"Konflikt: neu zugewiesen an Therapeut {therapist_id}"
            + (f" statt Therapeut {former}" if former else "")
            + (f" ({notiz})" if notiz else ""),
        )
        search.updated_at = now
        search.save()
        mark_placed_elsewhere(search.id, except_anfrage_id=None)
        row = _write_settlement(
            search, lines, vocab.NEU_ZUGEWIESEN, therapist_id, actor, notiz, now, reassign=True
        )
        number = row.umzuweisungen
        keys = reassignment_keys(search.id, number)
        outbox.put(
            "send_reassignment_confirmation",
            {
                "platzsuche_id": search.id,
                "therapist_id": therapist_id,
                "anfrage_id": new_line.therapeutenanfrage_id,
                "number": number,
            },
            keys["zusage"],
            now=now,
        )
        withdrawn = None
        if former is not None:
            former_anfrage = former_lines[-1].therapeutenanfrage_id if former_lines else None
            outbox.put(
                "send_reassignment_withdrawal",
                {
                    "platzsuche_id": search.id,
                    "therapist_id": former,
                    "anfrage_id": former_anfrage,
                    "number": number,
                },
                keys["ruecknahme"],
                now=now,
            )
            withdrawn = _withdraw_unsent_placement_email(search.id, former, now)
        notice_withdrawn = _withdraw_unsent_notice(
            new_line.therapeutenanfrage_id, search.patient_id, now
        )
        outbox.put(
            "send_placement_email",
            {
                "platzsuche_id": search.id,
                "therapist_id": therapist_id,
                "replaces": former,
                "number": number,
            },
            outbox.key("vermittlung", f"{search.id}.{therapist_id}.u{number}"),
            now=now,
        )
        audit.record(
            actor,
            "reassign_conflict",
            "platzsuche",
            search.id,
            {
                "from": former,
                "to": therapist_id,
                "number": number,
                "lines_withdrawn": [line.id for line in former_lines],
                "line_accepted": new_line.id,
                "unsent_placement_email_withdrawn": withdrawn,
                "unsent_conflict_notice_withdrawn": notice_withdrawn,
            },
            notiz,
            at=now,
        )
    phone_only = [
        t.id
        for t in Therapist.select().where(
            Therapist.id.in_([i for i in (therapist_id, former) if i])
        )
        if not usable_email(t)
    ]
    return {
        "platzsuche_id": search.id,
        "therapist_id": therapist_id,
        "former_therapist_id": former,
        "number": number,
        "phone_only": sorted(phone_only),  # no email for them: staff call
    }


def _withdraw_unsent_placement_email(search_id: int, therapist_id: int, now) -> int | None:
    """The placement email naming the former therapist (at acceptance or after an earlier
    reassignment), if it has not left yet: its row is removed (and its sending marked
    done) so the patient hears only of the final one; returns its id."""
    unsent = list(
        Email.select().where(
            Email.idempotenz_schluessel.in_(placement_keys(search_id, therapist_id))
            & Email.status.in_(("Entwurf", "In_Warteschlange"))
        )
    )
    for email in unsent:
        outbox.mark_done(outbox_key(email.idempotenz_schluessel), now=now)
        EmailInhalt.delete().where(EmailInhalt.email == email.id).execute()
        Email.delete().where(Email.id == email.id).execute()
    return max((email.id for email in unsent), default=None)


def _withdraw_unsent_notice(anfrage_id: int, patient_id: int, now) -> int | None:
    """The new therapist's conflict notice ("placed elsewhere"), if rendered but not sent
    yet: it is removed with the alternatives Anfrage it carried (unsent to the therapist,
    so nobody can have answered it), and queued again for the other patients it named, if
    any. A notice not rendered yet leaves this patient out by itself."""
    key = email_headers.email_key("konflikt", anfrage_id)
    email = Email.get_or_none(
        (Email.idempotenz_schluessel == key) & Email.status.in_(("Entwurf", "In_Warteschlange"))
    )
    if email is None:
        return None
    offer = Therapeutenanfrage.get_or_none(
        (Therapeutenanfrage.email == email.id) & Therapeutenanfrage.antwort_datum.is_null()
    )
    if offer is not None:
        TherapeutAnfragePatient.delete().where(
            TherapeutAnfragePatient.therapeutenanfrage == offer.id
        ).execute()
        Therapeutenanfrage.delete().where(Therapeutenanfrage.id == offer.id).execute()
    outbox.mark_done(outbox_key(key), now=now)
    EmailInhalt.delete().where(EmailInhalt.email == email.id).execute()
    Email.delete().where(Email.id == email.id).execute()
    item_key = outbox.key("konflikt", anfrage_id)
    item = OutboxItem.get_or_none(OutboxItem.dedupe_key == item_key)
    named = list((item.payload or {}).get("patient_ids", [])) if item is not None else []
    remaining = [p for p in named if p != patient_id]
    if remaining:
        outbox.put_again(
            "send_conflict_notice",
            {"anfrage_id": anfrage_id, "patient_ids": remaining},
            item_key,
            now=now,
        )
    return email.id


# --- the emails of a reassignment (rendered by workers) ----------------------------------------


def _current(search_id: int, number: int) -> tuple[Platzsuche, KonfliktErledigung] | None:
    search = Platzsuche.by_id(search_id)
    row = KonfliktErledigung.get_or_none(KonfliktErledigung.platzsuche == search_id)
    if search is None or row is None or row.umzuweisungen != number:
        return None  # a later reassignment replaced this one: its emails say the final state
    return search, row


def queue_reassignment_confirmation(
    platzsuche_id: int, therapist_id: int, anfrage_id: int, number: int, *, now=None
) -> Email | None:
    """To the therapist the patient was reassigned to: the patient is theirs after all (the
    earlier "bereits vermittelt" no longer holds). Nothing if the state changed since."""
    now = now or utcnow()
    with write_transaction():
        current = _current(platzsuche_id, number)
        if current is None or current[0].vermittelter_therapeut_id != therapist_id:
            return None
        search = current[0]
        therapist = Therapist.get_by_id(therapist_id)
        if not usable_email(therapist):
            return None  # phone only: staff call (the conflict list shows the settlement)
        rendered = render.render_reassignment_confirmation(
            anfrage_id, therapist_info(therapist), search.patient_id, search.id, number
        )
        email, _ = queue_email(rendered, therapist_id=therapist.id, anfrage_id=anfrage_id, now=now)
        outbox_send(email)
    return email


def queue_reassignment_withdrawal(
    platzsuche_id: int, therapist_id: int, anfrage_id: int | None, number: int, *, now=None
) -> Email | None:
    """To the former therapist: the patient goes to someone else; the confirmation of the
    acceptance is no longer valid. Like a conflict notice it offers the best alternatives as
    a real Anfrage (``sending.create_offer``; its ``konflikt_anfrage_id`` is the answered
    Anfrage). Nothing if the patient is theirs again meanwhile or this reassignment was
    overtaken; a repeated message finds the email and creates nothing."""
    now = now or utcnow()
    with write_transaction():
        bundling_lock()  # this may create an Anfrage: exclusive, like every bundle path
        current = _current(platzsuche_id, number)
        if current is None or current[0].vermittelter_therapeut_id == therapist_id:
            return None
        existing = Email.get_or_none(
            Email.idempotenz_schluessel == f"umzuweisung_ruecknahme:{platzsuche_id}.{number}"
        )
        if existing is not None:
            return existing
        search = current[0]
        therapist = Therapist.get_by_id(therapist_id)
        if not usable_email(therapist):
            return None
        offer_id, offered = sending.create_offer(therapist.id, now)
        rendered = render.render_reassignment_withdrawal(
            anfrage_id,
            therapist_info(therapist),
            search.patient_id,
            search.id,
            number,
            alternatives=[patient_info(p) for p in offered],
            offer_anfrage_id=offer_id,
            today=local_today(now),
            link_now=now,
        )
        email, _ = queue_email(
            rendered, therapist_id=therapist.id, anfrage_id=offer_id or anfrage_id, now=now
        )
        outbox_send(email)
        if offer_id is not None:
            sending.mark_offer_sent(
                offer_id,
                email,
                anfrage_id,
                now,
                f"Alternativen nach Neuzuweisung von Patient {search.patient_id}, gesendet mit "
                "der Rücknahme",
            )
        audit.record(
            "system",
            "reassignment_withdrawal",
            "platzsuche",
            search.id,
            {
                "therapist_id": therapist_id,
                "number": number,
                "alternatives": [p.id for p in offered],
                "alternativen_anfrage": offer_id,
            },
            at=now,
        )
    return email
