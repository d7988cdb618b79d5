"""Effects of bounces and out-of-office replies (domain §0 point 12).

Called by ``operations.replies`` inside the transaction that processes one inbound
message; each returns ``(status, reason, result)`` for the message's row.

``apply_bounce``
    Finds what a bounce refers to: our Email by the original Message-ID, else the
    Anfrage a signed Message-ID names, else the therapists whose address failed. A
    permanent failure of a therapist's *current* address marks it invalid
    (``therapist_contact.mark_email_invalid``: note + audit row), the bounced Emails
    become ``Fehlgeschlagen`` with the server's words, and every pending Anfrage of
    those therapists that went by email gets its phone call now (the inquiry never
    arrived; the call is its follow-up). A temporary failure or an address already
    replaced by staff changes nothing (``ignoriert`` with the reason); a bounce that
    names nothing of ours goes to review.
``apply_absence``
    An out-of-office reply to an Anfrage: the return date moves the follow-up to the
    working day after it (``nachverfolgung_ab``, which ``run_follow_up`` and the
    expiry respect), planned calls before that day are moved, and the Anfrage's notes
    record the date and the words. Without a date: a note only.
"""

from __future__ import annotations

import datetime as dt

from db.models import Email, Telefonanruf, Therapeutenanfrage, Therapist
from psymatch.domain import auto_replies, reply_parse
from psymatch.domain.bundling.practice import normalize_email
from psymatch.domain.tokens import parse_message_id

from . import audit, notes, snapshot
from .call_schedule import bundesland_code, schedule_call
from .therapist_contact import mark_email_invalid

ACTOR = "email"  # the audit actor of automatic changes made from inbound mail


def _emails_of(bounce: auto_replies.Bounce) -> list[Email]:
    ids = [m for m in bounce.message_ids if m]
    if not ids:
        return []
    bare = [m.strip("<>") for m in ids]
    return list(
        Email.select().where(Email.message_id.in_(ids + bare) & Email.therapist.is_null(False))
    )


def anfragen_named(bounce: auto_replies.Bounce) -> list[int]:
    return [a for a in (parse_message_id(m) for m in bounce.message_ids) if a is not None]


def apply_bounce(bounce: auto_replies.Bounce, now: dt.datetime) -> tuple[str, str | None, dict]:
    result: dict = {"bounce": bounce.as_dict()}
    emails = _emails_of(bounce)
    therapist_ids = {e.therapist_id for e in emails}
    for anfrage_id in anfragen_named(bounce):
        anfrage = Therapeutenanfrage.by_id(anfrage_id)
        if anfrage is not None:
            therapist_ids.add(anfrage.therapist_id)
    failed = {normalize_email(a) for a in bounce.recipients if normalize_email(a)}
    if not therapist_ids and failed:
        therapist_ids = {
            t.id
            for t in Therapist.select(Therapist.id).where(
                snapshot.normalised(Therapist.email).in_(sorted(failed))
            )
        }
    if not therapist_ids:
        return "pruefung", "Unzustellbar-Meldung: keine Anfrage und keine Adresse erkannt", result
    therapists = list(Therapist.select().where(Therapist.id.in_(sorted(therapist_ids))))
    result["therapists"] = sorted(therapist_ids)
    if not bounce.permanent:
        code = bounce.status or "ohne Code"
        return "ignoriert", f"Vorübergehender Zustellfehler ({code}): Adresse bleibt gültig", result
    # the address that failed: the report's, else the one the bounced email went to
    addresses = failed or {normalize_email(e.empfaenger_email) for e in emails}
    current = {normalize_email(t.email) for t in therapists if normalize_email(t.email)}
    invalid = sorted(addresses & current)
    if not invalid:
        return (
            "ignoriert",
            "Unzustellbar-Meldung für eine Adresse, die nicht mehr eingetragen ist",
            result,
        )
    reason = f"Unzustellbar {bounce.status or ''}: {bounce.diagnostic or ''}".strip(" :")[:300]
    marked = []
    for address in invalid:
        marked += mark_email_invalid(address, actor=ACTOR, reason=reason, now=now)
    for email in emails:
        if normalize_email(email.empfaenger_email) in invalid and email.status != "Fehlgeschlagen":
            email.status = "Fehlgeschlagen"
            email.fehlermeldung = reason
            email.save()
    result["marked"] = marked
    result["emails_failed"] = [e.id for e in emails]
    result["calls"] = _calls_for_pending(therapists, invalid, now)
    return "verarbeitet", None, result


def _calls_for_pending(therapists: list[Therapist], invalid: list[str], now) -> list[int]:
    """A phone call for every pending email Anfrage of these therapists without one."""
    ids = [t.id for t in therapists if normalize_email(t.email) in invalid]
    pending = (
        Therapeutenanfrage.select()
        .where(
            Therapeutenanfrage.therapist.in_(ids)
            & Therapeutenanfrage.gesendet_datum.is_null(False)
            & Therapeutenanfrage.antwort_datum.is_null()
            & Therapeutenanfrage.email.is_null(False)
        )
        .order_by(Therapeutenanfrage.id)
    )
    calls = []
    today = snapshot.local_today(now)
    for anfrage in pending:
        planned = (
            Telefonanruf.select()
            .where(
                (Telefonanruf.therapeutenanfrage == anfrage.id) & (Telefonanruf.status == "geplant")
            )
            .exists()
        )
        if planned:
            continue
        start = (
            max(today, anfrage.nachverfolgung_ab - dt.timedelta(days=1))
            if (anfrage.nachverfolgung_ab)
            else today
        )
        call = schedule_call(
            anfrage.therapist_id,
            start,
            anfrage.id,
            notiz=f"Ref: A{anfrage.id}; E-Mail unzustellbar, Anfrage telefonisch vorstellen",
        )
        anfrage.phone_call = call.id
        if anfrage.erinnerung_gesendet_datum is None:
            anfrage.erinnerung_gesendet_datum = now
        anfrage.notizen = notes.append(
            anfrage.notizen,
            now,
            ACTOR,
            f"E-Mail unzustellbar: Anruf geplant am {call.geplantes_datum:%d.%m.%Y} "
            f"{call.geplante_zeit}",
        )
        anfrage.save()
        audit.record(
            ACTOR,
            "bounce_call",
            "therapeutenanfrage",
            anfrage.id,
            {"phone_call_id": call.id},
            at=now,
        )
        calls.append(call.id)
    return calls


def reference_day(message: reply_parse.Message, received_at: dt.datetime) -> dt.date:
    """The day the automatic reply was written (its Date header), else when it came."""
    from email.utils import parsedate_to_datetime

    value = message.header("Date")
    if value:
        try:
            stamp = parsedate_to_datetime(value)
            if stamp.tzinfo is not None:
                stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
            return snapshot.local_today(stamp)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return snapshot.local_today(received_at)


def apply_absence(
    anfrage: Therapeutenanfrage | None,
    absence: auto_replies.Absence,
    now: dt.datetime,
) -> tuple[str, str | None, dict]:
    result: dict = {"abwesenheit": absence.as_dict()}
    if anfrage is None:
        return "ignoriert", "Abwesenheitsnotiz ohne erkennbare Anfrage", result
    if absence.return_date is None:
        anfrage.notizen = notes.append(
            anfrage.notizen, now, ACTOR, "Abwesenheitsnotiz ohne Rückkehrdatum erhalten"
        )
        anfrage.save()
        return "ignoriert", "Abwesenheitsnotiz ohne Rückkehrdatum (vermerkt)", result
    therapist = Therapist.get_by_id(anfrage.therapist_id)
    day = auto_replies.follow_up_day(absence.return_date, bundesland_code(therapist.plz))
    result["nachverfolgung_ab"] = day.isoformat()
    pending = anfrage.antwort_datum is None
    if pending and (anfrage.nachverfolgung_ab is None or anfrage.nachverfolgung_ab < day):
        anfrage.nachverfolgung_ab = day
        moved = _move_calls(anfrage, day, now)
        result["calls_moved"] = moved
        anfrage.notizen = notes.append(
            anfrage.notizen,
            now,
            ACTOR,
            f"Abwesenheitsnotiz: zurück {absence.return_date:%d.%m.%Y} "
            f"(„{absence.evidence}“); Nachverfolgung ab {day:%d.%m.%Y}",
        )
        anfrage.save()
        audit.record(
            ACTOR,
            "absence",
            "therapeutenanfrage",
            anfrage.id,
            {"return_date": absence.return_date.isoformat(), "nachverfolgung_ab": day.isoformat()},
            at=now,
        )
    return "verarbeitet", None, result


def _move_calls(anfrage: Therapeutenanfrage, day: dt.date, now) -> list[int]:
    """Planned calls of the Anfrage before ``day`` are cancelled and booked again from it."""
    early = list(
        Telefonanruf.select().where(
            (Telefonanruf.therapeutenanfrage == anfrage.id)
            & (Telefonanruf.status == "geplant")
            & (Telefonanruf.geplantes_datum < day)
        )
    )
    moved = []
    for call in early:
        call.status = "abgebrochen"
        call.notizen = notes.append(call.notizen, now, ACTOR, "Verschoben: Abwesenheitsnotiz")
        call.save()
        new = schedule_call(anfrage.therapist_id, day - dt.timedelta(days=1), anfrage.id)
        if anfrage.phone_call_id == call.id:
            anfrage.phone_call = new.id
        moved.append(new.id)
    return moved
