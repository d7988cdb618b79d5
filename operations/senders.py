"""Who may answer for a practice: the sender check of email replies (docs/domain.md §9.2).

A reply is recorded automatically only when its From address (trimmed, lowercased) is
the email of the Anfrage's practice (the therapists sharing one normalised email form one
practice, docs/domain.md §3) or an address staff confirmed for a member of it
(``Therapist.bestaetigte_absender``, ``confirm_sender``). Anything else goes to review.
"""

from __future__ import annotations

import datetime as dt
from email.utils import getaddresses

from peewee import fn

from db.database import write_transaction
from db.models import Therapist, utcnow
from db.statements import Prepared
from operations import audit
from operations.errors import OperationError
from psymatch.domain.bundling.practice import normalize_email


def sender_address(value: str | None) -> str | None:
    """The one address of a From value (``"Name" <a@b>`` or bare), normalised; None when
    there is none, or more than one."""
    if not isinstance(value, str):
        return None
    found = [addr for _, addr in getaddresses([value]) if addr and "@" in addr]
    if len(found) != 1:
        return None
    return normalize_email(found[0])


_PRACTICE_MEMBERS = Prepared(  # the therapists sharing a normalised address
    lambda p: Therapist.select(Therapist.id, Therapist.email, Therapist.bestaetigte_absender).where(
        fn.LOWER(fn.TRIM(Therapist.email)) == p.address
    )
)


def practice_addresses(therapist: Therapist) -> set[str]:
    """Every address that may answer for ``therapist``'s practice."""
    own = normalize_email(therapist.email)
    members = [therapist]
    if own:
        members = _PRACTICE_MEMBERS.rows(address=own) or [therapist]
    addresses = {own} if own else set()
    for member in members:
        addresses.update(normalize_email(a) for a in member.bestaetigte_absender or [])
    addresses.discard(None)
    return addresses


def confirm_sender(
    therapist_id: int, address: str, actor: str, *, now: dt.datetime | None = None
) -> list[str]:
    """Staff confirm ``address`` as a sender for the therapist's practice; returns the list."""
    normalised = sender_address(address)
    if normalised is None:
        raise OperationError("INVALID_ADDRESS", f"not one email address: {address!r}")
    now = now or utcnow()
    with write_transaction():
        therapist = Therapist.locked_by_id(therapist_id)
        if therapist is None:
            raise OperationError("NOT_FOUND", f"no therapist {therapist_id}", status=404)
        confirmed = list(therapist.bestaetigte_absender or [])
        if normalised not in confirmed:
            confirmed.append(normalised)
            therapist.bestaetigte_absender = confirmed
            therapist.save()
            audit.record(
                actor, "confirm_sender", "therapist", therapist.id, {"address": normalised}, at=now
            )
        return confirmed
