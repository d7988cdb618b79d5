"""The placement flow after an acceptance (docs/domain.md §11.3; spec §0 point 10).

An accepted patient gets the placement email at once (``operations.responses`` queues
``send_placement_email``; ``operations.sending.queue_placement_email`` renders it in a
worker) with three signed one-click links (``psymatch.domain.tokens.placement_link``):

- ``stattgefunden`` - the initial session took place and the patient begins: the line
  becomes ``in_Sitzungen`` and the search ``erfolgreich`` (no second email);
- ``passt_nicht`` / ``kein_termin`` - the ``nicht_erschienen`` effects with that reason:
  the therapist is excluded for the search, the placement is cleared, the search is back in
  the pool.

``record_placement_outcome`` is the one operation for the link page, staff and the clock.
``run_placement_follow_up`` (daily) queues one reminder after ``PLACEMENT_REMINDER_DAYS``
without an answer and takes silence as consent after ``PLACEMENT_CONFIRM_DAYS`` (actor
``automatisch``). Both count from the day the placement email was sent; a patient who got
no placement email (no address) is left to staff, who record the outcome after a call.
"""

from __future__ import annotations

import datetime as dt

from db.database import write_transaction
from db.models import (
    Email,
    KonfliktErledigung,
    OutboxItem,
    Patient,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
    utcnow,
)
from db.statements import Prepared
from operations.emailing import render
from operations.emailing.data import patient_contact, therapist_info
from operations.emailing.headers import placement_key
from operations.emailing.queue import outbox_send, queue_email
from psymatch import settings
from psymatch.domain import searches as search_rules
from psymatch.domain import vocab
from psymatch.domain.bundling.practice import normalize_email

from . import audit, notes, outbox
from .errors import OperationError
from .locks import bundling_lock
from .responses import add_exclusion, mark_placed_elsewhere
from .therapist_contact import usable_email

OUTCOMES = vocab.VERMITTLUNGSERGEBNISSE
LABELS = vocab.VERMITTLUNGSERGEBNIS_LABELS
SOURCES = ("link", "staff", "telefon", "automatisch")
AUTOMATIC = "automatisch"


def _exclusion_outcome(search: Platzsuche, therapist_id: int) -> str | None:
    """``passt_nicht`` / ``kein_termin`` when the therapist was excluded for that reason."""
    for entry in search.ausgeschlossene_therapeuten or []:
        if isinstance(entry, dict) and entry.get("id") == therapist_id:
            reason = str(entry.get("reason") or "")
            for outcome in (vocab.PASST_NICHT, vocab.KEIN_TERMIN):
                if reason.startswith(outcome):
                    return outcome
    return None


def recorded_outcome(search: Platzsuche, therapist_id: int) -> str | None:
    """The placement outcome already on record for this search and therapist, if any."""
    if search.status == "erfolgreich" and search.vermittelter_therapeut_id == therapist_id:
        return vocab.STATTGEFUNDEN
    return _exclusion_outcome(search, therapist_id)


def _check_input(outcome, actor, source) -> None:
    if outcome not in OUTCOMES:
        raise OperationError(
            "INVALID_OUTCOME",
            f"{outcome!r} is not one of {', '.join(OUTCOMES)}",
            details={"valid": list(OUTCOMES)},
        )
    if source not in SOURCES:
        raise OperationError(
            "INVALID_SOURCE",
            f"{source!r} is not one of {', '.join(SOURCES)}",
            details={"valid": list(SOURCES)},
        )
    if not isinstance(actor, str) or not actor.strip():
        raise OperationError("ACTOR_REQUIRED", "the outcome needs the name of who records it")


def record_placement_outcome(
    platzsuche_id: int,
    outcome: str,
    *,
    actor: str,
    source: str,
    now: dt.datetime | None = None,
    therapist_id: int | None = None,
) -> dict:
    """Record what became of a placement (docs/domain.md §11.3), idempotently.

    ``therapist_id`` (from a link) names the placement the answer is about; without it the
    search's current placement is meant. An outcome already on record for that placement
    changes nothing (``changed`` False, ``recorded`` says which). Refusals write nothing:
    ``INVALID_OUTCOME``, ``INVALID_SOURCE``, ``ACTOR_REQUIRED``, ``PLATZSUCHE_NOT_FOUND``
    (404), ``NOT_PLACED`` (409: no current placement with that therapist to answer for).
    """
    now = now or utcnow()
    _check_input(outcome, actor, source)
    actor = actor.strip()
    with write_transaction():
        bundling_lock(shared=True)
        search = Platzsuche.locked_by_id(platzsuche_id)
        if search is None:
            raise OperationError(
                "PLATZSUCHE_NOT_FOUND", f"no Platzsuche {platzsuche_id}", status=404
            )
        placed = search.vermittelter_therapeut_id
        therapist = therapist_id if therapist_id is not None else placed
        result = {
            "platzsuche_id": search.id,
            "therapist_id": therapist,
            "outcome": outcome,
            "changed": False,
            "recorded": None,
        }
        if therapist is not None:
            already = recorded_outcome(search, therapist)
            if already is not None:
                result["recorded"] = already
                return result
        if therapist is None or placed != therapist or search.status != "aktiv":
            raise OperationError(
                "NOT_PLACED",
                f"search {search.id} has no open placement"
                + (f" with therapist {therapist}" if therapist else ""),
                status=409,
            )
        lines = _accepted_lines(search.id, therapist)
        if outcome == vocab.STATTGEFUNDEN:
            _succeed(search, therapist, lines, now, actor, source)
        else:
            _fail(search, therapist, lines, outcome, now, actor, source)
        search.updated_at = now
        search.save()
        result.update(changed=True, recorded=outcome)
        audit.record(
            actor,
            "record_placement_outcome",
            "platzsuche",
            search.id,
            {
                "therapist_id": therapist,
                "outcome": outcome,
                "source": source,
                "lines": [line.id for line in lines],
            },
            at=now,
        )
    return result


def _accepted_lines(search_id: int, therapist_id: int) -> list[TherapeutAnfragePatient]:
    """The search's accepted lines in Anfragen of this therapist (none after a manual
    assignment)."""
    return _ACCEPTED_LINES.rows(search=search_id, therapist=therapist_id)


_ACCEPTED_LINES = Prepared(
    lambda p: (
        TherapeutAnfragePatient.select()
        .join(Therapeutenanfrage)
        .where(
            (TherapeutAnfragePatient.platzsuche == p.search)
            & (TherapeutAnfragePatient.status == "angenommen")
            & (Therapeutenanfrage.therapist == p.therapist)
        )
    )
)


def _succeed(search, therapist_id, lines, now, actor, source) -> None:
    for line in lines:
        line.antwortergebnis = vocab.IN_SITZUNGEN
        line.updated_at = now
        line.save()
    search.status = "erfolgreich"
    search.erfolgreiche_vermittlung_datum = now
    mark_placed_elsewhere(search.id, except_anfrage_id=None)
    how = "Schweigen gilt als Zustimmung" if source == AUTOMATIC else LABELS[vocab.STATTGEFUNDEN]
    search.notizen = notes.append(
        search.notizen,
        now,
        actor,
        f"Vermittlung bestätigt ({source}): {how}; Status: erfolgreich",
    )
    patient = Patient.get_by_id(search.patient_id)
    if patient.status == "auf_der_Suche":
        patient.status = "in_Therapie"
        patient.save()


def _fail(search, therapist_id, lines, outcome, now, actor, source) -> None:
    for line in lines:
        line.antwortergebnis = vocab.NICHT_ERSCHIENEN
        line.updated_at = now
        line.save()
    add_exclusion(search, therapist_id, now, f"{outcome} (Vermittlung, {source})", by=actor)
    search.vermittelter_therapeut = None
    search.notizen = notes.append(
        search.notizen,
        now,
        actor,
        f"Vermittlung an Therapeut {therapist_id} beendet ({source}): {LABELS[outcome]}; "
        "Therapeut ausgeschlossen, Suche geht weiter",
    )


# --- what staff see --------------------------------------------------------------------


def _emails_by_key(keys: list[str], chunk: int = 500) -> dict[str, tuple]:
    """``{key: (status, gesendet_am)}`` of the emails with these idempotency keys, read in
    a few queries (not one per search: the Today page reloads this every minute)."""
    found = {}
    for start in range(0, len(keys), chunk):
        query = Email.select(Email.idempotenz_schluessel, Email.status, Email.gesendet_am).where(
            Email.idempotenz_schluessel.in_(keys[start : start + chunk])
        )
        found.update((key, (status, at)) for key, status, at in query.tuples())
    return found


def settlement(search_id: int) -> KonfliktErledigung | None:
    """The search's conflict settlement (one at most), or None."""
    return _SETTLEMENT.first(search=search_id)


_SETTLEMENT = Prepared(
    lambda p: KonfliktErledigung.select().where(KonfliktErledigung.platzsuche == p.search).limit(1)
)


def reassignments(search_id: int) -> int:
    """How often staff reassigned this search's conflict (0: never)."""
    row = settlement(search_id)
    return (row.umzuweisungen or 0) if row is not None else 0


def placement_keys(search_id: int, therapist_id: int, count: int | None = None) -> list[str]:
    """Keys of every placement email that may name this therapist for this search, oldest
    first: the one at acceptance, then one per conflict reassignment (``count`` of them;
    default: as many as the search had). Not every key has an email: a reassignment to the
    other therapist has none for this one."""
    count = reassignments(search_id) if count is None else count
    return [placement_key("", search_id, therapist_id, n or None) for n in range(count + 1)]


def latest_placement_email(search_id: int, therapist_id: int) -> Email | None:
    """The newest placement email naming this therapist for this search (after flips
    between two therapists, the one of the final state), or None."""
    keys = placement_keys(search_id, therapist_id)
    if len(keys) == 1:  # never reassigned: the email at acceptance, if any
        return _EMAIL_BY_KEY.first(key=keys[0])
    found = {
        e.idempotenz_schluessel: e
        for e in Email.select().where(Email.idempotenz_schluessel.in_(keys))
    }
    return next((found[k] for k in reversed(keys) if k in found), None)


_EMAIL_BY_KEY = Prepared(
    lambda p: Email.select().where(Email.idempotenz_schluessel == p.key).limit(1)
)


def placement_sent_at(search_id: int, therapist_id: int) -> dt.datetime | None:
    """When the placement email for this search and therapist was sent (None: not sent;
    after a reassignment back to the therapist: the email of that reassignment)."""
    email = latest_placement_email(search_id, therapist_id)
    if email is None or email.status != "Gesendet":
        return None
    return email.gesendet_am


def awaiting_confirmation(now: dt.datetime | None = None) -> list[dict]:
    """Placed ``aktiv`` searches whose outcome is not recorded yet, oldest placement first:
    search, patient, therapist, placement email and reminder states, days since sending."""
    now = now or utcnow()
    rows = []
    query = (
        Platzsuche.select(Platzsuche.id, Platzsuche.patient, Platzsuche.vermittelter_therapeut)
        .where((Platzsuche.status == "aktiv") & Platzsuche.vermittelter_therapeut.is_null(False))
        .order_by(Platzsuche.id)
    )
    placed = list(query.tuples())
    flipped = dict(  # few: searches whose conflict staff reassigned
        KonfliktErledigung.select(KonfliktErledigung.platzsuche, KonfliktErledigung.umzuweisungen)
        .where(KonfliktErledigung.umzuweisungen > 0)
        .tuples()
    )
    own = {(s, t): placement_keys(s, t, flipped.get(s, 0)) for s, _, t in placed}
    keys = [k for ks in own.values() for k in ks]
    keys += [placement_key("erinnerung", s, t) for s, _, t in placed]
    emails = _emails_by_key(keys)
    for search_id, patient_id, therapist_id in placed:
        latest = next((k for k in reversed(own[(search_id, therapist_id)]) if k in emails), None)
        status, gesendet_am = emails.get(latest, (None, None))
        reminder_status, _ = emails.get(
            placement_key("erinnerung", search_id, therapist_id), (None, None)
        )
        sent = gesendet_am if status == "Gesendet" else None
        rows.append(
            {
                "platzsuche_id": search_id,
                "patient_id": patient_id,
                "therapist_id": therapist_id,
                "email_status": status,
                "sent_at": sent,
                "days": (now - sent).days if sent else None,
                "reminder_status": reminder_status,
            }
        )
    rows.sort(key=lambda r: (r["sent_at"] is None, r["sent_at"] or now, r["platzsuche_id"]))
    return rows


# --- reminder and silence (clock) ------------------------------------------------------------


def reminder_key(search_id: int, therapist_id: int) -> str:
    return outbox.key("vermittlung_erinnerung", f"{search_id}.{therapist_id}")


def run_placement_follow_up(now: dt.datetime | None = None, *, actor: str = "clock") -> dict:
    """Daily: one reminder after ``PLACEMENT_REMINDER_DAYS`` x 24 h without an outcome since
    the placement email was sent; after ``PLACEMENT_CONFIRM_DAYS`` the search becomes
    ``erfolgreich`` (actor ``automatisch``). Run twice, it does nothing the second time."""
    now = now or utcnow()
    s = settings.get()
    remind_after = dt.timedelta(days=s.PLACEMENT_REMINDER_DAYS)
    confirm_after = dt.timedelta(days=s.PLACEMENT_CONFIRM_DAYS)
    done: dict[str, list[int]] = {"reminded": [], "confirmed": []}
    for row in awaiting_confirmation(now):
        sent = row["sent_at"]
        if sent is None:
            continue
        search_id, therapist_id = row["platzsuche_id"], row["therapist_id"]
        if now - sent >= confirm_after:
            try:
                result = record_placement_outcome(
                    search_id,
                    vocab.STATTGEFUNDEN,
                    actor=AUTOMATIC,
                    source=AUTOMATIC,
                    now=now,
                    therapist_id=therapist_id,
                )
            except OperationError:  # changed meanwhile (a click, staff): nothing to do
                continue
            if result["changed"]:
                done["confirmed"].append(search_id)
        elif now - sent >= remind_after and row["reminder_status"] is None:
            key = reminder_key(search_id, therapist_id)
            with write_transaction():
                if OutboxItem.select().where(OutboxItem.dedupe_key == key).exists():
                    continue  # one reminder only, whatever became of it
                outbox.put(
                    "send_placement_reminder",
                    {"platzsuche_id": search_id, "therapist_id": therapist_id},
                    key,
                    now=now,
                )
                audit.record(
                    actor,
                    "placement_reminder",
                    "platzsuche",
                    search_id,
                    {"therapist_id": therapist_id},
                    at=now,
                )
            done["reminded"].append(search_id)
    return done


def queue_placement_reminder(
    platzsuche_id: int, therapist_id: int, *, now: dt.datetime | None = None
) -> Email | None:
    """Render and queue the one reminder (worker only: it signs links). Nothing when the
    placement changed or an outcome was recorded meanwhile, or the patient has no email."""
    now = now or utcnow()
    with write_transaction():
        search = Platzsuche.by_id(platzsuche_id)
        if (
            search is None
            or search.status != "aktiv"
            or search.vermittelter_therapeut_id != therapist_id
        ):
            return None
        patient = Patient.get_by_id(search.patient_id)
        if not normalize_email(patient.email):
            return None
        sent = placement_sent_at(search.id, therapist_id)
        rendered = render.render_placement_reminder(
            search.id,
            therapist_id,
            patient_contact(patient),
            therapist_info(Therapist.get_by_id(therapist_id)),
            days_since=(now - sent).days if sent else settings.get().PLACEMENT_REMINDER_DAYS,
            link_now=now,
        )
        email, _ = queue_email(rendered, patient_id=patient.id, now=now)
        outbox_send(email)
    return email


# --- staff: a placement email with a template of their choice ---------------------------------


def _meeting(details) -> dict:
    """``{"date": "YYYY-MM-DD", "time": "HH:MM"}`` from staff input, or MEETING_DETAILS_REQUIRED."""
    details = details or {}
    day, time = details.get("date"), str(details.get("time") or "").strip()
    try:
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        dt.time.fromisoformat(time)
    except ValueError:
        raise OperationError(
            "MEETING_DETAILS_REQUIRED", "meeting templates need a date and a time (HH:MM)"
        ) from None
    return {"date": day.isoformat(), "time": time}


def request_placement_email(
    platzsuche_id: int,
    template: str,
    meeting_details: dict | None = None,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> dict:
    """Queue the placement email with the template staff chose, e.g. a meeting confirmation
    once a first session is arranged (docs/domain.md §11.3). Only an outbox row: the worker
    renders and signs it. A template the automatic email already used sends nothing twice.

    Codes: ``ACTOR_REQUIRED``, ``PLATZSUCHE_NOT_FOUND`` 404, ``NOT_PLACED`` 409,
    ``INVALID_TEMPLATE``, ``THERAPIST_CONTACT_MISSING``, ``MEETING_DETAILS_REQUIRED``."""
    now = now or utcnow()
    if not isinstance(actor, str) or not actor.strip():
        raise OperationError("ACTOR_REQUIRED", "the request needs the name of who sends it")
    if template not in search_rules.EMAIL_TEMPLATES:
        raise OperationError("INVALID_TEMPLATE", f"unknown email template {template!r}")
    meeting = {}
    if template.startswith("meeting_"):
        meeting = _meeting(meeting_details)
    with write_transaction():
        search = Platzsuche.locked_by_id(platzsuche_id)
        if search is None:
            raise OperationError(
                "PLATZSUCHE_NOT_FOUND", f"no Platzsuche {platzsuche_id}", status=404
            )
        therapist_id = search.vermittelter_therapeut_id
        if therapist_id is None or search.status != "aktiv":
            raise OperationError(
                "NOT_PLACED", f"search {search.id} has no open placement", status=409
            )
        therapist = Therapist.get_by_id(therapist_id)
        address = usable_email(therapist)  # a bounced address is no way to reach them
        missing = search_rules.missing_contact(template, address, therapist.telefon)
        if missing:
            raise OperationError(
                "THERAPIST_CONTACT_MISSING",
                f"template {template} tells the patient the therapist's {missing}, "
                "which is not on record (or marked undeliverable)",
            )
        suffix = "termin" if template.startswith("meeting_") else ""
        key = outbox.key("vermittlung_staff", f"{search.id}.{therapist_id}.{suffix or 'kontakt'}")
        outbox.put_again(
            "send_placement_email",
            {
                "platzsuche_id": search.id,
                "therapist_id": therapist_id,
                "template": template,
                "meeting": meeting,
            },
            key,
            now=now,
        )
        audit.record(
            actor.strip(),
            "request_placement_email",
            "platzsuche",
            search.id,
            {"therapist_id": therapist_id, "template": template},
            at=now,
        )
    return {"platzsuche_id": search.id, "therapist_id": therapist_id, "template": template}
