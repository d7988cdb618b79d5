"""Booking a phone call in a free slot (docs/domain.md §8.2), one write transaction.

The slot is planned from the calls booked *inside* the transaction that creates
the new one, after the callee's row is locked (``FOR UPDATE`` on PostgreSQL,
the database write lock of ``BEGIN IMMEDIATE`` on SQLite): two workers that
book calls for the same therapist are serialised and never get the same slot.
Called inside an open transaction, it joins it (a savepoint; the row lock then
lasts until the caller commits).
"""

from __future__ import annotations

import datetime as dt
import functools

from db.database import write_transaction
from db.models import Patient, PlzCentroid, Telefonanruf, Therapist
from db.statements import Prepared
from psymatch.domain.slots import SlotParams, parse_time, plan_call

# Every call that is not cancelled blocks its slot (see slots.py).
BLOCKING_STATUSES = ("geplant", "abgeschlossen", "fehlgeschlagen")


class CallTargetNotFound(LookupError):
    """No therapist / patient with that id; ``code`` is the domain's outcome code."""

    def __init__(self, code: str, target_id: int):
        super().__init__(f"{code}: {target_id}")
        self.code = code
        self.target_id = target_id


def booked_calls(field, record_id: int, after: dt.date) -> list[tuple[dt.date, int, int]]:
    """(date, start minute, duration) of the blocking calls of one callee after ``after``
    (``field``: ``Telefonanruf.therapist`` or ``.patient``)."""
    rows = _booked_calls(field).rows(callee=record_id, after=after)
    return [(day, parse_time(time), minutes) for day, time, minutes in rows]


@functools.cache
def _booked_calls(field) -> Prepared:
    return Prepared(
        lambda p: (
            Telefonanruf.select(
                Telefonanruf.geplantes_datum, Telefonanruf.geplante_zeit, Telefonanruf.dauer_minuten
            )
            .where(
                (field == p.callee)
                & (Telefonanruf.status.in_(BLOCKING_STATUSES))
                & (Telefonanruf.geplantes_datum > p.after)
            )
            .tuples()
        )
    )


def bundesland_code(plz: str | None) -> str | None:
    if not plz:
        return None
    centroid = PlzCentroid.by_id(plz)
    return centroid.bundesland_code if centroid else None


def schedule_call(
    therapist_id: int | None,
    from_date: dt.date,
    anfrage_id: int | None = None,
    *,
    patient_id: int | None = None,
    notiz: str | None = None,
) -> Telefonanruf:
    """Create a ``geplant`` call for a therapist (5 min, in a phone window) or a
    patient (10 min, 10:00 by default) on the next callable day after ``from_date``.

    Raises ``CallTargetNotFound`` (``THERAPIST_NOT_FOUND`` / ``PATIENT_NOT_FOUND``).
    """
    if (therapist_id is None) == (patient_id is None):
        raise ValueError("a call goes to exactly one of therapist_id / patient_id")
    if therapist_id is not None:
        model, field, record_id = Therapist, Telefonanruf.therapist, therapist_id
        code, params = "THERAPIST_NOT_FOUND", SlotParams.for_therapist()
    else:
        model, field, record_id = Patient, Telefonanruf.patient, patient_id
        code, params = "PATIENT_NOT_FOUND", SlotParams.for_patient()
    if notiz is None and anfrage_id is not None:
        notiz = f"Ref: A{anfrage_id}"
    with write_transaction():
        callee = model.locked_by_id(record_id)
        if callee is None:
            raise CallTargetNotFound(code, record_id)
        windows = callee.telefonische_erreichbarkeit if model is Therapist else {}
        day, time = plan_call(
            windows,
            from_date,
            booked_calls(field, record_id, from_date),
            bundesland_code(callee.plz),
            params,
        )
        return Telefonanruf.create(
            therapist=therapist_id,
            patient=patient_id,
            therapeutenanfrage=anfrage_id,
            geplantes_datum=day,
            geplante_zeit=time,
            dauer_minuten=params.call_minutes,
            status="geplant",
            notizen=notiz or "",
        )
