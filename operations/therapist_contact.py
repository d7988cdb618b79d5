"""A therapist's email address: usable or not, and staff entering a new one (domain §0.12).

``usable_email(therapist)``
    The normalised address inquiries and reminders may go to, or None: none recorded, or a
    permanent delivery failure marked it invalid (``email_ungueltig_seit``). Every sender of
    therapist email asks this (``operations/sending.py``); None means "by phone".
``mark_email_invalid(therapist_ids, address, actor, reason, now)``
    Used by bounce processing (``operations/auto_replies.py``): marks the therapists whose
    current address is ``address`` (a practice shares one), with a note and an audit row
    each. Already marked: nothing changes (a repeated bounce keeps the first date).
``set_therapist_email(therapist_id, email, actor, *, reason=None, now=None)``
    Staff enter an address (the person page calls this). It is validated like an import
    (``psymatch.domain.validation.email``), stored, and clears the invalid mark; a note on
    the therapist and an audit row name the staff member. Returns a dict: ``therapist_id``,
    ``email``, ``previous``, ``was_invalid``. Refusals (``OperationError``, nothing changed):
    ``ACTOR_REQUIRED`` (empty or unusable staff name), ``THERAPIST_NOT_FOUND`` (404),
    ``INVALID_EMAIL`` (not an address), ``EMAIL_UNCHANGED`` (the same address, not marked
    invalid: nothing to do). Entering the same address while it is marked invalid is allowed:
    staff confirm that it works again.
``email_replaced(therapist, before, after, actor, now)``
    The person page's edit (``operations.person_edit.edit_therapist``) changed the address:
    a new address clears the invalid mark the same way (note, audit row).
"""

from __future__ import annotations

import datetime as dt

from db.database import locked, write_transaction
from db.models import Therapist, utcnow
from psymatch.domain import validation
from psymatch.domain.bundling import practice
from psymatch.domain.bundling.practice import normalize_email

from . import audit, notes, snapshot
from .errors import OperationError


def usable_email(therapist: Therapist) -> str | None:
    """The normalised address email to this therapist may use, else None (phone); the
    bundle selection applies the same rule (``practice.usable_email``)."""
    return practice.usable_email(therapist)


def mark_email_invalid(
    address: str, *, actor: str, reason: str, now: dt.datetime | None = None
) -> list[int]:
    """Mark every therapist whose current address is ``address`` (normalised); returns the
    ids newly marked (already marked ones keep their first date and get no second row)."""
    now = now or utcnow()
    wanted = normalize_email(address)
    if not wanted:
        return []
    marked = []
    with write_transaction():
        rows = locked(
            Therapist.select()
            .where(snapshot.normalised(Therapist.email) == wanted)
            .order_by(Therapist.id)
        )
        for therapist in rows:
            if therapist.email_ungueltig_seit is not None:
                continue
            therapist.email_ungueltig_seit = now
            therapist.notizen = notes.append(
                therapist.notizen,
                now,
                actor,
                f"E-Mail-Adresse {wanted} unzustellbar ({reason}); Anfragen gehen telefonisch, "
                "bis eine neue Adresse eingetragen ist",
            )
            therapist.save()
            audit.record(
                actor,
                "email_invalid",
                "therapist",
                therapist.id,
                {"address": wanted},
                reason=reason,
                at=now,
            )
            marked.append(therapist.id)
    return marked


def set_therapist_email(
    therapist_id: int,
    email: str,
    actor: str,
    *,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Staff enter a therapist's email address; clears the invalid mark (see module doc)."""
    try:
        actor = audit.actor_name(actor)
    except ValueError as exc:
        raise OperationError("ACTOR_REQUIRED", str(exc)) from None
    try:
        address = validation.email("email", email)
    except validation.RowError as exc:
        raise OperationError("INVALID_EMAIL", str(exc)) from None
    now = now or utcnow()
    with write_transaction():
        therapist = Therapist.locked_by_id(therapist_id)
        if therapist is None:
            raise OperationError("THERAPIST_NOT_FOUND", f"no therapist {therapist_id}", status=404)
        previous = therapist.email
        was_invalid = therapist.email_ungueltig_seit is not None
        if normalize_email(previous) == normalize_email(address) and not was_invalid:
            raise OperationError(
                "EMAIL_UNCHANGED", f"therapist {therapist_id} has this address already"
            )
        therapist.email = address
        therapist.email_ungueltig_seit = None
        text = f"E-Mail-Adresse eingetragen: {address}"
        if was_invalid:
            text += " (Markierung 'unzustellbar' aufgehoben)"
        therapist.notizen = notes.append(therapist.notizen, now, actor, text)
        therapist.save()
        audit.record(
            actor,
            "set_therapist_email",
            "therapist",
            therapist.id,
            {"previous": previous, "email": address, "was_invalid": was_invalid},
            reason=reason,
            at=now,
        )
    return {
        "therapist_id": therapist_id,
        "email": address,
        "previous": previous,
        "was_invalid": was_invalid,
    }


def email_replaced(
    therapist: Therapist, before: str | None, after: str | None, *, actor: str, now: dt.datetime
) -> bool:
    """Clear the invalid mark when an edit put another address in; True when it did.
    Runs inside the caller's transaction, after the edit saved the row."""
    if therapist.email_ungueltig_seit is None:
        return False
    if not normalize_email(after) or normalize_email(after) == normalize_email(before):
        return False
    therapist.email_ungueltig_seit = None
    therapist.notizen = notes.append(
        therapist.notizen,
        now,
        actor,
        f"Neue E-Mail-Adresse {after}: Markierung 'unzustellbar' aufgehoben",
    )
    therapist.save()
    audit.record(
        actor,
        "email_invalid_cleared",
        "therapist",
        therapist.id,
        {"previous": before, "email": after},
        at=now,
    )
    return True
