"""Sending Anfragen and the emails that follow answers (docs/domain.md §7, §8.1, §10, §11.3).

Each function renders its email, creates the Email row (idempotent by key) and
the outbox item that lets the relay enqueue ``send_email``, together with the
state change, in one transaction. Rule 4 (one inquiry or reminder a week per
address) is checked inside that transaction under a per-address lock.
"""

from __future__ import annotations

import datetime as dt
import zlib

from db.database import db, is_postgres, write_transaction
from db.models import (
    Email,
    Patient,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
    utcnow,
)
from db.statements import Prepared
from operations.call_schedule import schedule_call
from operations.emailing import headers as email_headers
from operations.emailing import render
from operations.emailing.data import (
    PATIENT_INFO_COLUMNS,
    AcceptedPatient,
    Meeting,
    patient_contact,
    patient_info,
    therapist_info,
)
from operations.emailing.queue import outbox_send, queue_email
from psymatch import settings
from psymatch.domain import vocab
from psymatch.domain.bundling import Params, select_for_therapist
from psymatch.domain.bundling.practice import normalize_email
from psymatch.domain.searches import default_placement_template, missing_contact

from . import audit, notes, outbox, placements, snapshot
from .errors import OperationError
from .locks import bundling_lock
from .therapist_contact import usable_email


def _address_lock(address: str) -> None:
    """Serialise rule-4 checks for one address across workers (PostgreSQL)."""
    if is_postgres():
        key = zlib.crc32(address.encode()) & 0x7FFFFFFF
        db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (72_633_201, key))


def _practice_cooling_until(therapist: Therapist) -> list[dt.date | None]:
    """``naechster_kontakt_moeglich`` of every member of the therapist's practice."""
    address = normalize_email(therapist.email)
    if not address:
        return [therapist.naechster_kontakt_moeglich]
    return [until for (until,) in _PRACTICE_COOLING.rows(address=address)]


_PRACTICE_COOLING = Prepared(
    lambda p: (
        Therapist.select(Therapist.naechster_kontakt_moeglich)
        .where(snapshot.normalised(Therapist.email) == p.address)
        .tuples()
    )
)


def _check_contactable(therapist: Therapist, now: dt.datetime) -> None:
    """Rules 1, 2 and 4 of docs/domain.md §5 (rule 3 would refuse the Anfrage being sent itself)."""
    today = snapshot.local_today(now)
    if therapist.status != "aktiv":
        raise OperationError(
            "THERAPIST_NOT_CONTACTABLE",
            "therapist is not aktiv",
            status=409,
            details={"reason": "inactive"},
        )
    if any(until and until > today for until in _practice_cooling_until(therapist)):
        raise OperationError(
            "THERAPIST_NOT_CONTACTABLE",
            "practice is in its cooling period",
            status=409,
            details={"reason": "cooling"},
        )
    address = usable_email(therapist)
    if address:
        _address_lock(address)
        last = snapshot.email_last_queued(address)
        interval = dt.timedelta(days=settings.get().EMAIL_MIN_INTERVAL_DAYS)
        if last is not None and now - last < interval:
            raise OperationError(
                "RATE_LIMITED",
                f"an email went to {address} at {last:%Y-%m-%d %H:%M} UTC",
                status=409,
                details={"retry_at": (last + interval).isoformat()},
            )


# only what ``patient_info`` shows a therapist: the identity is not even decrypted
_PRESENTED = Prepared(
    lambda p: Patient.select(
        *[getattr(Patient, name) for name in ("id", *PATIENT_INFO_COLUMNS)]
    ).where(Patient.id == p.id)
)


def _presented_patients(anfrage: Therapeutenanfrage) -> list[Patient]:
    rows = TherapeutAnfragePatient.lines_of(anfrage.id, offered_only=True)
    if not rows:
        raise OperationError("NO_ELIGIBLE_PATIENTS", f"A{anfrage.id} has no patient left to offer")
    # a bundle's few patients read by id (a statement composed once) cost less than
    # composing an IN (...) query for each bundle
    patients = {p.id: p for p in (_PRESENTED.first(id=r.patient_id) for r in rows) if p is not None}
    if len(patients) != len(rows):
        raise OperationError(
            "PATIENT_DATA_INCOMPLETE", f"A{anfrage.id}: patient records missing", status=500
        )
    return [patients[r.patient_id] for r in rows]


def _sendable(anfrage_id: int, now: dt.datetime) -> tuple[Therapeutenanfrage, Therapist]:
    """The unsent Anfrage (row-locked) and its therapist, if the rules let it go out now;
    else the refusal. Shared by sending and by queuing a send from the console."""
    anfrage = Therapeutenanfrage.locked_by_id(anfrage_id)
    if anfrage is None:
        raise OperationError("ANFRAGE_NOT_FOUND", f"no Anfrage A{anfrage_id}", status=404)
    if anfrage.gesendet_datum is not None:
        raise OperationError("ALREADY_SENT", f"A{anfrage.id} was sent already")
    therapist = Therapist.by_id(anfrage.therapist_id)
    if therapist is None:
        raise OperationError("THERAPIST_NOT_FOUND", "therapist missing", status=404)
    _check_contactable(therapist, now)
    return anfrage, therapist


def send_anfrage(anfrage_id: int, *, actor: str = "system", now: dt.datetime | None = None) -> dict:
    """Send one Anfrage by email, or by phone if the therapist has no email (docs/domain.md §7)."""
    now = now or utcnow()
    with write_transaction():
        anfrage, therapist = _sendable(anfrage_id, now)
        patients = _presented_patients(anfrage)
        if usable_email(therapist):
            rendered = render.render_inquiry(
                anfrage.id,
                therapist_info(therapist),
                [patient_info(p) for p in patients],
                today=snapshot.local_today(now),
                link_now=now,
            )
            email, _ = queue_email(
                rendered, therapist_id=therapist.id, anfrage_id=anfrage.id, now=now
            )
            outbox_send(email)
            anfrage.email = email.id
            therapist.letzter_kontakt_email = snapshot.local_today(now)
            # that column alone (a save would write the therapist's JSON columns too)
            therapist.save(only=(Therapist.letzter_kontakt_email, Therapist.updated_at))
            channel, reference = "email", {"email_id": email.id}
        else:
            call = schedule_call(therapist.id, snapshot.local_today(now), anfrage.id)
            anfrage.phone_call = call.id
            channel, reference = "phone", {"phone_call_id": call.id}
        anfrage.gesendet_datum = now
        anfrage.notizen = notes.append(anfrage.notizen, now, actor, f"Gesendet ({channel})")
        anfrage.save()
        outbox.mark_done(outbox.key("send_anfrage", anfrage.id), now=now)
        audit.record(
            actor,
            "send_anfrage",
            "therapeutenanfrage",
            anfrage.id,
            {"channel": channel, **reference, "patients": [p.id for p in patients]},
            at=now,
        )
    return {"anfrage_id": anfrage.id, "channel": channel, **reference, "gesendet_datum": now}


def request_send(anfrage_id: int, *, actor: str, now: dt.datetime | None = None) -> dict:
    """Queue an Anfrage for sending by the workers, in the name of ``actor`` (the console).

    The console's kernels do not hold the signing key that reply addresses and answer
    links need (SECURITY.md), so they do not render; the ``send_anfrage`` actor does, with
    ``actor`` in its audit row. The rules that would refuse the sending are checked here
    already, so staff hear at once why a practice cannot be contacted; the worker checks
    them again when it sends. Queuing twice is harmless (one outbox key per Anfrage).
    """
    now = now or utcnow()
    with write_transaction():
        anfrage, therapist = _sendable(anfrage_id, now)
        key = outbox.key("send_anfrage", anfrage.id)
        if outbox.pending(key):
            raise OperationError(
                "ALREADY_QUEUED", f"A{anfrage.id} is waiting for the workers to send it"
            )
        payload = {"anfrage_id": anfrage.id, "requested_by": actor}
        outbox.put_again("send_anfrage", payload, key, now=now)
        audit.record(actor, "request_send", "therapeutenanfrage", anfrage.id, at=now)
    channel = "email" if usable_email(therapist) else "phone"
    return {"anfrage_id": anfrage.id, "channel": channel, "queued": True}


# --- follow-up (docs/domain.md §8.1) ----------------------------------------------------------


def run_follow_up(now: dt.datetime | None = None, *, actor: str = "clock") -> dict:
    """Calls or reminders for sent email inquiries without an answer after the threshold."""
    now = now or utcnow()
    s = settings.get()
    threshold = dt.timedelta(days=s.FOLLOW_UP_THRESHOLD_DAYS)
    due = (
        Therapeutenanfrage.select(Therapeutenanfrage.id)
        .where(
            Therapeutenanfrage.email.is_null(False)
            & Therapeutenanfrage.gesendet_datum.is_null(False)
            & Therapeutenanfrage.antwort_datum.is_null()
            & (Therapeutenanfrage.gesendet_datum <= now - threshold)
            & (  # an absence moved it (the day before, so a call can land on that day)
                Therapeutenanfrage.nachverfolgung_ab.is_null()
                | (
                    Therapeutenanfrage.nachverfolgung_ab
                    <= snapshot.local_today(now) + dt.timedelta(days=1)
                )
            )
            & (
                Therapeutenanfrage.erinnerung_gesendet_datum.is_null()
                | (
                    Therapeutenanfrage.phone_call.is_null()
                    if s.FOLLOW_UP_MODE == "reminder_then_call"
                    else False
                )
            )
        )
        .order_by(Therapeutenanfrage.id)
    )
    done = {"calls": [], "reminders": [], "skipped": []}
    for (anfrage_id,) in due.tuples():
        try:
            outcome = follow_up_one(anfrage_id, now=now, actor=actor)
        except OperationError as error:  # one Anfrage's refusal must not stop the day's run
            outcome = "skipped", {"anfrage_id": anfrage_id, "reason": error.code}
        if outcome:
            done[outcome[0]].append(outcome[1])
    return done


def follow_up_one(anfrage_id: int, *, now: dt.datetime, actor: str):
    """The follow-up step due for one Anfrage, idempotent; ("calls"|"reminders"|"skipped", id)."""
    s = settings.get()
    threshold = dt.timedelta(days=s.FOLLOW_UP_THRESHOLD_DAYS)
    with write_transaction():
        anfrage = Therapeutenanfrage.locked_by_id(anfrage_id)
        if anfrage is None or anfrage.antwort_datum is not None or anfrage.gesendet_datum is None:
            return None
        age = now - anfrage.gesendet_datum
        therapist = Therapist.get_by_id(anfrage.therapist_id)
        wants_call = (
            s.FOLLOW_UP_MODE == "call"
            or (
                s.FOLLOW_UP_MODE == "reminder_then_call"
                and anfrage.erinnerung_gesendet_datum is not None
                and age >= 2 * threshold
            )
            or not usable_email(therapist)
        )
        if anfrage.erinnerung_gesendet_datum is not None and not (
            s.FOLLOW_UP_MODE == "reminder_then_call"
            and wants_call
            and anfrage.phone_call_id is None
        ):
            return None
        today = snapshot.local_today(now)
        not_before = anfrage.nachverfolgung_ab  # the working day after an absence
        if (
            not_before is not None
            and not_before > today
            and (not wants_call or not_before > today + dt.timedelta(days=1))
        ):
            return None
        if wants_call:
            start = max(today, not_before - dt.timedelta(days=1)) if not_before else today
            call = schedule_call(therapist.id, start, anfrage.id)
            anfrage.phone_call = call.id
            kind, reference = "calls", call.id
        else:
            try:
                _check_contactable(therapist, now)
                # every patient placed elsewhere meanwhile: nothing left to remind about
                presented = _presented_patients(anfrage)
            except OperationError as error:
                return "skipped", {"anfrage_id": anfrage.id, "reason": error.code}
            days = int(age.total_seconds() // 86400)
            rendered = render.render_reminder(
                anfrage.id,
                therapist_info(therapist),
                [patient_info(p) for p in presented],
                days_since=days,
                today=snapshot.local_today(now),
                link_now=now,
            )
            email, _ = queue_email(
                rendered, therapist_id=therapist.id, anfrage_id=anfrage.id, now=now
            )
            outbox_send(email)
            anfrage.reminder_email = email.id
            kind, reference = "reminders", email.id
        if anfrage.erinnerung_gesendet_datum is None:
            anfrage.erinnerung_gesendet_datum = now
        anfrage.notizen = notes.append(anfrage.notizen, now, actor, f"Nachverfassung: {kind}")
        anfrage.save()
        audit.record(
            actor,
            "follow_up",
            "therapeutenanfrage",
            anfrage.id,
            {"kind": kind, "id": reference},
            at=now,
        )
    return kind, reference


# --- emails that follow answers ---------------------------------------------------------------


def declined_patients(therapist_id: int) -> set[int]:
    """Patients this therapist declined in any Anfrage (any ``abgelehnt_*`` answer): never
    offered to them again as conflict alternatives (issue 15.3)."""
    declined = [a for a in vocab.THERAPEUTENANTWORTEN if a.startswith("abgelehnt")]
    query = (
        TherapeutAnfragePatient.select(TherapeutAnfragePatient.patient)
        .join(Therapeutenanfrage)
        .where(
            (Therapeutenanfrage.therapist == therapist_id)
            & TherapeutAnfragePatient.antwortergebnis.in_(declined)
        )
    )
    return {patient_id for (patient_id,) in query.tuples()}


def _alternatives_selection(therapist_id: int, now: dt.datetime):
    """The engine's choice for this therapist as conflict alternatives (docs/domain.md
    §10/§11.5): hard constraints H1-H7, the parallel cap and the pool rules as for any
    bundle, staff mode without a PLZ prefix, cooling and the weekly email rule ignored (the
    therapist has just answered); patients the therapist declined are left out. ``None``
    when the therapist may not get an Anfrage at all: not ``aktiv``, or another Anfrage of
    the practice is still pending (one open inquiry per practice)."""
    snap = snapshot.load(now, practice_of=therapist_id)
    therapist = next((t for t in snap.therapists if t.id == therapist_id), None)
    if therapist is None or therapist.status != "aktiv":
        return None
    if any(t.has_pending_anfrage for t in snap.therapists):
        return None
    declined = declined_patients(therapist_id)
    selection = select_for_therapist(
        snap,
        Params.from_settings(settings.get()),
        therapist_id,
        mode="staff",
        check_contact=False,
        search_filter=lambda search: search.patient_id not in declined,
    )
    return selection if selection.ok else None


def conflict_alternatives(therapist_id: int, now: dt.datetime | None = None) -> list[int]:
    """Patient ids the engine would offer this therapist now as conflict alternatives."""
    selection = _alternatives_selection(therapist_id, now or utcnow())
    return [p.patient_id for p in selection.patients] if selection else []


def create_offer(therapist_id: int, now: dt.datetime) -> tuple[int | None, list[Patient]]:
    """Store the conflict alternatives for a therapist as an Anfrage (unsent; the caller
    sends it with its notice through ``mark_offer_sent``); returns its id and patients in
    order, or (None, []) when there is none. Inside the caller's write transaction, which
    holds the bundling lock exclusively."""
    from .bundles import write_bundles  # bundles imports this module lazily as well

    selection = _alternatives_selection(therapist_id, now)
    if selection is None:
        return None, []
    (offer_id,) = write_bundles(
        [selection], ausloeser="personal", now=now, actor="system", queue_sending=False
    )
    ids = [p.patient_id for p in selection.patients]
    patients = {p.id: p for p in Patient.select().where(Patient.id.in_(ids))}
    return offer_id, [patients[i] for i in ids]


def mark_offer_sent(offer_id: int, email: Email, answered_anfrage_id: int | None, now, why: str):
    """The offered Anfrage went out with ``email`` (a conflict notice or a withdrawal)."""
    offer = Therapeutenanfrage.get_by_id(offer_id)
    offer.konflikt_anfrage_id = answered_anfrage_id
    offer.email = email.id
    offer.gesendet_datum = now
    offer.notizen = notes.append(offer.notizen, now, "system", why)
    offer.save()


def _still_placed_elsewhere(anfrage: Therapeutenanfrage, patient_ids) -> list[int]:
    """Those of ``patient_ids`` whose search is not placed with the Anfrage's therapist now
    (a conflict staff reassigned to this therapist before the notice went out is no news
    of a placement elsewhere)."""
    mine = {
        patient_id
        for (patient_id,) in TherapeutAnfragePatient.select(TherapeutAnfragePatient.patient)
        .join(Platzsuche)
        .where(
            (TherapeutAnfragePatient.therapeutenanfrage == anfrage.id)
            & (Platzsuche.vermittelter_therapeut == anfrage.therapist_id)
        )
        .tuples()
    }
    return [p for p in patient_ids if p not in mine]


def queue_conflict_notice(anfrage_id: int, patient_ids: list[int], *, now=None) -> Email | None:
    """The conflict notice of docs/domain.md §10: one per answered Anfrage, naming every patient
    that had found a place meanwhile, with the best alternatives for this therapist.

    The alternatives are stored as a real Anfrage for the therapist (``konflikt_anfrage_id``
    = this one), sent with the notice: its lines are answered by reply, link, phone or staff
    through ``record_response`` like any inquiry (issue 15.3). One transaction under the
    bundling lock; a repeated message finds the notice and creates nothing."""
    now = now or utcnow()
    with write_transaction():
        bundling_lock()  # this may create an Anfrage: exclusive, like every bundle path
        anfrage = Therapeutenanfrage.locked_by_id(anfrage_id)
        if anfrage is None:
            return None
        existing = Email.get_or_none(
            Email.idempotenz_schluessel == email_headers.email_key("konflikt", anfrage.id)
        )
        if existing is not None:
            return existing
        therapist = Therapist.get_by_id(anfrage.therapist_id)
        if not usable_email(therapist):
            return None  # phone-only: staff tell them during the next call (listed as conflict)
        patient_ids = _still_placed_elsewhere(anfrage, patient_ids)
        if not patient_ids:
            return None  # staff gave them to this therapist meanwhile: a confirmation went
        offer_id, offered = create_offer(therapist.id, now)
        rendered = render.render_conflict(
            anfrage.id,
            therapist_info(therapist),
            list(patient_ids),
            [patient_info(p) for p in offered],
            today=snapshot.local_today(now),
            offer_anfrage_id=offer_id,
            link_now=now,
        )
        email, _ = queue_email(
            rendered, therapist_id=therapist.id, anfrage_id=offer_id or anfrage.id, now=now
        )
        outbox_send(email)
        if offer_id is not None:
            mark_offer_sent(
                offer_id,
                email,
                anfrage.id,
                now,
                f"Alternativen zum Konflikt aus A{anfrage.id}, gesendet mit der Konfliktmitteilung",
            )
        audit.record(
            "system",
            "conflict_notice",
            "therapeutenanfrage",
            anfrage.id,
            {
                "patient_ids": list(patient_ids),
                "alternatives": [p.id for p in offered],
                "alternativen_anfrage": offer_id,
            },
            at=now,
        )
    return email


def queue_acceptance_confirmation(anfrage_id: int, *, now=None) -> Email | None:
    """Thanks to a therapist who accepted patients (names are shared only after acceptance)."""
    now = now or utcnow()
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    therapist = Therapist.get_by_id(anfrage.therapist_id)
    if not usable_email(therapist):
        return None
    accepted = [
        AcceptedPatient(patient_id=r.patient_id, name=None)
        for r in anfrage.zeilen.where(TherapeutAnfragePatient.status == "angenommen")
    ]
    if not accepted:
        return None
    with write_transaction():
        rendered = render.render_acceptance_confirmation(
            anfrage.id, therapist_info(therapist), accepted
        )
        email, _ = queue_email(rendered, therapist_id=therapist.id, anfrage_id=anfrage.id, now=now)
        outbox_send(email)
    return email


def _meeting(meeting: dict | None) -> Meeting | None:
    """The arranged session of a placement email (the outbox payload carries an ISO date)."""
    if not meeting:
        return None
    day = meeting["date"]
    return Meeting(
        date=day if isinstance(day, dt.date) else dt.date.fromisoformat(day), time=meeting["time"]
    )


def _replaced(therapist_id: int | None, search_id: int):
    """The therapist an earlier placement email to this search's patient named, if such an
    email was sent (one withdrawn before sending needs no correction)."""
    if therapist_id is None:
        return None
    sent = (
        Email.select(Email.id)
        .where(
            Email.idempotenz_schluessel.in_(placements.placement_keys(search_id, therapist_id))
            & (Email.status != "Fehlgeschlagen")
        )
        .exists()
    )
    therapist = Therapist.by_id(therapist_id)
    return therapist_info(therapist) if sent and therapist is not None else None


def _overtaken(search_id: int, therapist_id: int, number: int | None, at_acceptance: bool):
    """Whether a placement email about this therapist's placement no longer tells the final
    state because a conflict reassignment came after it: one of an earlier reassignment
    (``number`` not the latest), or the acceptance's own email (its message may still be
    on its way) when a reassignment gave the patient to this therapist again: that
    reassignment's email says so. A template staff ask for is never overtaken."""
    row = placements.settlement(search_id)
    count = (row.umzuweisungen or 0) if row is not None else 0
    if number is not None:
        return number != count
    return at_acceptance and count > 0 and row.therapist_id == therapist_id


def queue_placement_email(
    platzsuche_id: int,
    template: str | None = None,
    meeting: dict | None = None,
    *,
    therapist_id: int | None = None,
    replaces: int | None = None,
    number: int | None = None,
    now=None,
) -> Email | None:
    """The placement email to the patient (docs/domain.md §11.3), one per search and placed
    therapist: at acceptance (``therapist_id`` given, with the three signed links) or when
    staff set ``erfolgreich`` (no second email if it went out at acceptance).

    ``replaces`` and ``number``: staff reassigned a conflict (reassignment ``number``); the
    email has a key of its own, so a patient given back and forth hears of every change,
    and says it replaces the one naming ``replaces``. Nothing is sent when the placement
    changed meanwhile or a later reassignment overtook the email (``_overtaken``).
    Patient -> ``in_Therapie`` when the search is ``erfolgreich`` (after a placement at
    acceptance: when the patient confirms)."""
    now = now or utcnow()
    with write_transaction():
        search = Platzsuche.get_by_id(platzsuche_id)
        placed = search.vermittelter_therapeut_id
        if placed is None or (therapist_id is not None and placed != therapist_id):
            return None
        at_acceptance = template is None and replaces is None and number is None
        if therapist_id is not None and _overtaken(search.id, placed, number, at_acceptance):
            return None
        if search.status not in ("aktiv", "erfolgreich"):
            return None
        patient = Patient.get_by_id(search.patient_id)
        therapist = Therapist.get_by_id(placed)
        if not normalize_email(patient.email):
            search.notizen = notes.append(
                search.notizen,
                now,
                "system",
                "Keine E-Mail-Adresse: Vermittlungsmail nicht gesendet",
            )
            search.save()
            return None
        address = usable_email(therapist)  # an invalid address is no way to reach them
        template = template or default_placement_template(address, therapist.telefon)
        if missing_contact(template, address, therapist.telefon):
            search.notizen = notes.append(
                search.notizen,
                now,
                "system",
                f"Vermittlungsmail nicht gesendet: Therapeut {therapist.id} ohne Kontaktdaten "
                f"für {template}; bitte telefonisch informieren",
            )
            search.save()
            return None
        rendered = render.render_placement(
            template,
            search.id,
            patient_contact(patient),
            therapist_info(therapist),
            meeting=_meeting(meeting),
            therapist_id=therapist.id,
            with_links=search.status == "aktiv",
            link_now=now,
            replaces=_replaced(replaces, search.id),
            number=number,
        )
        email, created = queue_email(rendered, patient_id=patient.id, now=now)
        outbox_send(email)
        if created and search.status == "erfolgreich" and patient.status == "auf_der_Suche":
            patient.status = "in_Therapie"
            patient.save()
    return email
