"""Phone call outcomes (docs/domain.md §4, §8.2): an answer on the phone is like any other."""

from __future__ import annotations

import datetime as dt

from db.database import write_transaction
from db.models import Telefonanruf, Therapist, utcnow
from operations.call_schedule import CallTargetNotFound, schedule_call

from . import audit, notes
from .errors import OperationError
from .responses import record_response
from .snapshot import local_today

OUTCOMES = ("abgeschlossen", "fehlgeschlagen", "abgebrochen")


def set_call_status(
    call_id: int,
    status: str,
    *,
    ergebnis: str | None = None,
    responses: dict | None = None,
    actor: str = "staff",
    now: dt.datetime | None = None,
) -> dict:
    """Finish a planned call. ``abgeschlossen`` with ``responses`` records the therapist's
    answer to the call's Anfrage through ``record_response`` (cooling starts there);
    ``fehlgeschlagen`` changes nothing else (no cooling, the Anfrage stays pending)."""
    now = now or utcnow()
    if status not in OUTCOMES:
        raise OperationError("INVALID_STATUS", f"{status!r} is not one of {', '.join(OUTCOMES)}")
    with write_transaction():
        call = Telefonanruf.locked_by_id(call_id)
        if call is None:
            raise OperationError("CALL_NOT_FOUND", f"no call {call_id}", status=404)
        if call.status != "geplant":
            raise OperationError(
                "INVALID_STATE", f"call {call_id} is {call.status} already", status=409
            )
        response = None
        if responses:
            if call.therapeutenanfrage_id is None:
                raise OperationError("INVALID_STATE", "this call belongs to no Anfrage", status=409)
            if status != "abgeschlossen":
                raise OperationError("INVALID_STATE", "only a completed call carries an answer")
            response = record_response(
                call.therapeutenanfrage_id,
                responses,
                ergebnis,
                actor=actor,
                now=now,
                source="telefon",
            ).as_dict()
        call.status = status
        call.ergebnis = ergebnis
        if status == "abgeschlossen":
            call.tatsaechliches_datum = call.tatsaechliches_datum or local_today(now)
            call.tatsaechliche_zeit = call.tatsaechliche_zeit or call.geplante_zeit
            if call.therapist_id is not None:  # the contact history staff see (docs/domain.md §4)
                Therapist.update(letzter_kontakt_telefon=call.tatsaechliches_datum).where(
                    Therapist.id == call.therapist_id
                ).execute()
        call.notizen = notes.append(call.notizen, now, actor, f"{status}: {ergebnis or ''}".strip())
        call.save()
        audit.record(
            actor,
            "set_call_status",
            "telefonanruf",
            call.id,
            {"status": status, "answered": response is not None},
            at=now,
        )
    return {"call_id": call.id, "status": status, "response": response}


def reschedule(call_id: int, *, actor: str = "staff", now: dt.datetime | None = None):
    """A new call after a failed one, from the failure date (staff decide, docs/domain.md §8.2).

    Refused with ``ALREADY_PLANNED`` while a later call for the same Anfrage is planned, so a
    double-click plans one call."""
    now = now or utcnow()
    call = Telefonanruf.by_id(call_id)
    if call is None:
        raise OperationError("CALL_NOT_FOUND", f"no call {call_id}", status=404)
    later = (
        Telefonanruf.select(Telefonanruf.id)
        .where(
            (Telefonanruf.id > call.id)
            & (Telefonanruf.status == "geplant")
            & (Telefonanruf.therapist == call.therapist_id)
            & (
                Telefonanruf.therapeutenanfrage.is_null()
                if call.therapeutenanfrage_id is None
                else Telefonanruf.therapeutenanfrage == call.therapeutenanfrage_id
            )
        )
        .first()
    )
    if later is not None:  # a repeated click must not plan a second call
        raise OperationError(
            "ALREADY_PLANNED",
            f"call {later.id} is already planned after call {call.id}",
            status=409,
            details={"ids": [later.id]},
        )
    try:
        new = schedule_call(
            call.therapist_id,
            call.tatsaechliches_datum or local_today(now),
            call.therapeutenanfrage_id,
            patient_id=call.patient_id,
        )
    except CallTargetNotFound as error:
        raise OperationError(error.code, str(error), status=404) from None
    with write_transaction():
        audit.record(
            actor, "reschedule_call", "telefonanruf", call.id, {"new_call": new.id}, at=now
        )
    return new
