"""Unanswered inquiries end (docs/domain.md §8.3): the daily expiry run.

A sent Anfrage still pending ``ANFRAGE_EXPIRY_DAYS`` (21) days after sending is
closed without response (``close_without_response``, audited as automatic) unless
its follow-up call reached the therapist or is still to come:

- a linked call ``abgeschlossen`` (reached; the answer may follow or staff record it)
  keeps the Anfrage open for staff to decide;
- a linked call ``geplant`` for today or later (not attempted yet) keeps it open until
  that call has happened;
- calls ``fehlgeschlagen`` (not reached), ``abgebrochen``, ``geplant`` but overdue
  (planned before today and never made), or no call at all (reminder mode): the
  Anfrage expires, and ``close_without_response`` cancels the overdue planned calls.

An out-of-office reply that moved the follow-up (``nachverfolgung_ab``, domain §0.12)
holds the Anfrage open until ``ANFRAGE_EXPIRY_DAYS - FOLLOW_UP_THRESHOLD_DAYS`` days
after that day: the therapist gets the same time to answer after the follow-up.

Idempotent: a closed Anfrage is not pending any more, so a second run (or a repeated
message) finds nothing to do.
"""

from __future__ import annotations

import datetime as dt

from db.database import locked, write_transaction
from db.models import Telefonanruf, Therapeutenanfrage, utcnow
from psymatch import settings

from .locks import bundling_lock
from .responses import close_without_response
from .snapshot import local_today

ACTOR = "ablauf"  # the audit actor of automatic closures


def _calls_keeping_open(today: dt.date):
    """Ids of Anfragen with a call that reached the therapist or is still to come."""
    return Telefonanruf.select(Telefonanruf.therapeutenanfrage).where(
        Telefonanruf.therapeutenanfrage.is_null(False)
        & (
            (Telefonanruf.status == "abgeschlossen")
            | ((Telefonanruf.status == "geplant") & (Telefonanruf.geplantes_datum >= today))
        )
    )


def _absence_over(today: dt.date):
    """No absence holds the Anfrage open: an out-of-office reply moved its follow-up to
    ``nachverfolgung_ab``; it may expire only the usual time after that follow-up
    (``ANFRAGE_EXPIRY_DAYS - FOLLOW_UP_THRESHOLD_DAYS`` days, 14 by default)."""
    s = settings.get()
    grace = dt.timedelta(days=max(0, s.ANFRAGE_EXPIRY_DAYS - s.FOLLOW_UP_THRESHOLD_DAYS))
    return Therapeutenanfrage.nachverfolgung_ab.is_null() | (
        Therapeutenanfrage.nachverfolgung_ab <= today - grace
    )


def due(now: dt.datetime | None = None) -> list[int]:
    """Ids of the Anfragen the expiry run would close at ``now``, oldest first."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=settings.get().ANFRAGE_EXPIRY_DAYS)
    query = (
        Therapeutenanfrage.select(Therapeutenanfrage.id)
        .where(
            Therapeutenanfrage.gesendet_datum.is_null(False)
            & Therapeutenanfrage.antwort_datum.is_null()
            & (Therapeutenanfrage.gesendet_datum <= cutoff)
            & Therapeutenanfrage.id.not_in(_calls_keeping_open(local_today(now)))
            & _absence_over(local_today(now))
        )
        .order_by(Therapeutenanfrage.gesendet_datum, Therapeutenanfrage.id)
    )
    return [anfrage_id for (anfrage_id,) in query.tuples()]


def expire_one(anfrage_id: int, *, now: dt.datetime, actor: str = ACTOR) -> dict | None:
    """Close one Anfrage if it is still due (checked again under its row lock); the result
    of ``close_without_response``, or None when it is not due (any more)."""
    cutoff = now - dt.timedelta(days=settings.get().ANFRAGE_EXPIRY_DAYS)
    with write_transaction():
        bundling_lock(shared=True)
        anfrage = locked(
            Therapeutenanfrage.select().where(
                (Therapeutenanfrage.id == anfrage_id) & _absence_over(local_today(now))
            )
        ).first()
        if (
            anfrage is None
            or anfrage.gesendet_datum is None
            or anfrage.antwort_datum is not None
            or anfrage.gesendet_datum > cutoff
        ):
            return None
        kept_open = (
            _calls_keeping_open(local_today(now))
            .where(Telefonanruf.therapeutenanfrage == anfrage_id)
            .exists()
        )
        if kept_open:
            return None
        return close_without_response(anfrage_id, actor=actor, now=now, automatic=True)


def run_expiry(now: dt.datetime | None = None, *, actor: str = ACTOR) -> dict:
    """Close every due Anfrage, each in its own transaction; returns the closed ids."""
    now = now or utcnow()
    closed = []
    for anfrage_id in due(now):
        if expire_one(anfrage_id, now=now, actor=actor) is not None:
            closed.append(anfrage_id)
    return {"closed": closed, "expiry_days": settings.get().ANFRAGE_EXPIRY_DAYS}
