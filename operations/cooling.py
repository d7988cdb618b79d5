"""Manual override of a therapist's cooling period (docs/domain.md §5), with a mandatory reason."""

from __future__ import annotations

import datetime as dt

from db.database import write_transaction
from db.models import Therapist, utcnow

from . import audit, notes
from .errors import OperationError
from .locks import bundling_lock


def override_cooling(
    therapist_id: int, new_date: dt.date | None, reason: str, *, actor: str = "staff", now=None
) -> Therapist:
    now = now or utcnow()
    if not (reason or "").strip():
        raise OperationError("REASON_REQUIRED", "a cooling override needs a reason")
    with write_transaction():
        bundling_lock(shared=True)
        therapist = Therapist.by_id(therapist_id)
        if therapist is None:
            raise OperationError("THERAPIST_NOT_FOUND", f"no therapist {therapist_id}", status=404)
        before = therapist.naechster_kontakt_moeglich
        therapist.naechster_kontakt_moeglich = new_date
        shown = new_date.isoformat() if new_date else "sofort"
        therapist.notizen = notes.append(
            therapist.notizen, now, actor, f"Abkühlung überschrieben ({shown}): {reason.strip()}"
        )
        therapist.save()
        audit.record(
            actor,
            "override_cooling",
            "therapist",
            therapist_id,
            {
                "before": before.isoformat() if before else None,
                "after": new_date.isoformat() if new_date else None,
            },
            reason.strip(),
            at=now,
        )
    return therapist
