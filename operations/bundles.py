"""Creating bundles: automatic rounds and staff composition (docs/domain.md §6).

Both take the bundling lock, read the snapshot inside their transaction, run
the pure selection and write Anfragen, bundle lines (with the explanation of
every choice), audit rows and - for rounds - the outbox rows that queue the
sending, all in one transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from db.bulk import bulk_insert, reserve_ids
from db.database import write_transaction
from db.models import AuditLog, TherapeutAnfragePatient, Therapeutenanfrage, utcnow
from psymatch import settings
from psymatch.domain.bundling import (
    Params,
    Selection,
    list_selectable,
    plan_round,
    select_for_therapist,
)
from psymatch.domain.bundling import select as outcomes
from psymatch.domain.bundling.select import valid_prefix

from . import audit, flags, notes, outbox, snapshot
from .errors import OperationError
from .locks import bundling_lock

ANFRAGE_COLUMNS = (
    "id",
    "therapist_id",
    "erstellt_datum",
    "gesendet_datum",
    "antwort_datum",
    "antworttyp",
    "anfragegroesse",
    "angenommen_anzahl",
    "abgelehnt_anzahl",
    "keine_antwort_anzahl",
    "notizen",
    "email_id",
    "phone_call_id",
    "reminder_email_id",
    "erinnerung_gesendet_datum",
    "ausloeser",
)
LINE_COLUMNS = (
    "created_at",
    "updated_at",
    "therapeutenanfrage_id",
    "platzsuche_id",
    "patient_id",
    "position_in_anfrage",
    "status",
    "antwortergebnis",
    "antwortnotizen",
    "auswahl",
)
AUDIT_COLUMNS = ("at", "actor", "action", "entity", "entity_id", "details", "reason")


def params() -> Params:
    return Params.from_settings(settings.get())


def raise_for(selection: Selection) -> None:
    """Turn a non-OK selection into the outcome code of docs/domain.md §13."""
    code = selection.outcome
    if code == outcomes.OK:
        return
    messages = {
        outcomes.INVALID_PREFIX: (
            "PLZ prefix must be exactly the configured number of digits",
            400,
        ),
        outcomes.NOT_FOUND: (f"no therapist with id {selection.therapist_id}", 404),
        outcomes.NOT_CONTACTABLE: (f"therapist may not be contacted now: {selection.reason}", 409),
        outcomes.NO_ELIGIBLE: ("no patient passes the rules for this therapist", 200),
        outcomes.TOO_FEW: (
            f"only {selection.eligible_count} eligible patient(s), fewer than the minimum",
            200,
        ),
    }
    message, status = messages[code]
    details = {"reason": selection.reason} if selection.reason else {}
    if code == outcomes.TOO_FEW:
        details["count"] = selection.eligible_count
    raise OperationError(code, message, status=status, details=details)


def write_bundles(
    selections: list[Selection],
    *,
    ausloeser: str,
    now: dt.datetime,
    actor: str,
    queue_sending: bool,
) -> list[int]:
    """Store selections as unsent Anfragen with their lines; returns the new ids (same order).

    Must run inside the caller's write transaction (which holds the bundling lock).
    """
    ids = reserve_ids(Therapeutenanfrage, len(selections))
    anfragen, lines, work, audits = [], [], [], []
    label = "Automatische Runde" if ausloeser == "runde" else "Zusammengestellt"
    for anfrage_id, selection in zip(ids, selections, strict=True):
        level = selection.patients[0].relaxation_level
        soft = f"weiche Filter S1-S{level} angewandt" if level else "ohne weiche Filter"
        anfragen.append(
            {
                "id": anfrage_id,
                "therapist_id": selection.therapist_id,
                "erstellt_datum": now,
                "gesendet_datum": None,
                "antwort_datum": None,
                "antworttyp": None,
                "anfragegroesse": len(selection.patients),
                "angenommen_anzahl": 0,
                "abgelehnt_anzahl": 0,
                "keine_antwort_anzahl": 0,
                "notizen": notes.line(
                    now, actor, f"{label}: {len(selection.patients)} Patienten, {soft}"
                ),
                "email_id": None,
                "phone_call_id": None,
                "reminder_email_id": None,
                "erinnerung_gesendet_datum": None,
                "ausloeser": ausloeser,
            }
        )
        for patient in selection.patients:
            lines.append(
                {
                    "created_at": now,
                    "updated_at": now,
                    "therapeutenanfrage_id": anfrage_id,
                    "platzsuche_id": patient.search_id,
                    "patient_id": patient.patient_id,
                    "position_in_anfrage": patient.position,
                    "status": "anstehend",
                    "antwortergebnis": None,
                    "antwortnotizen": None,
                    "auswahl": patient.as_dict(),
                }
            )
        if queue_sending:
            work.append(
                ("send_anfrage", {"anfrage_id": anfrage_id}, outbox.key("send_anfrage", anfrage_id))
            )
        audits.append(
            {
                "at": now,
                "actor": actor,
                "action": "create_anfrage",
                "entity": "therapeutenanfrage",
                "entity_id": str(anfrage_id),
                "reason": None,
                "details": {
                    "ausloeser": ausloeser,
                    "therapist_id": selection.therapist_id,
                    "patients": [p.search_id for p in selection.patients],
                    "relaxation_level": level,
                },
            }
        )
    bulk_insert(Therapeutenanfrage, ANFRAGE_COLUMNS, anfragen)
    bulk_insert(TherapeutAnfragePatient, LINE_COLUMNS, lines)
    outbox.put_many(work, now=now)
    bulk_insert(AuditLog, AUDIT_COLUMNS, audits)
    return ids


# --- staff composition ------------------------------------------------------------------------


def list_selectable_therapists(plz_prefix: str, now: dt.datetime | None = None):
    """Selectable therapists of a region in serving order (docs/domain.md §6.2).

    Reads only the region's practices (with their members elsewhere), no searches."""
    if not valid_prefix(plz_prefix, params()):
        raise OperationError(
            "INVALID_PLZ_PREFIX", f"PLZ prefix must be {params().plz_digits} digits"
        )
    snap = snapshot.load(now, include_searches=False, region=plz_prefix)
    return list_selectable(snap, params(), plz_prefix)


def preview_anfrage(therapist_id: int, plz_prefix: str | None = None, now=None) -> Selection:
    """The patients a bundle for this therapist would hold now, explained; stores nothing."""
    selection = select_for_therapist(
        snapshot.load(now, practice_of=therapist_id),
        params(),
        therapist_id,
        mode="staff",
        plz_prefix=plz_prefix,
    )
    raise_for(selection)
    return selection


@dataclass
class Created:
    anfrage_id: int
    selection: Selection
    gesendet: bool = False
    send_error: str | None = None
    zum_versand: bool = False  # queued for the workers (send_now with queue_send)

    def as_dict(self) -> dict:
        return {
            "anfrage_id": self.anfrage_id,
            "therapist_id": self.selection.therapist_id,
            "anfragegroesse": len(self.selection.patients),
            "patients": [p.as_dict() for p in self.selection.patients],
            "gesendet": self.gesendet,
            "send_error": self.send_error,
            "zum_versand": self.zum_versand,
        }


def create_anfrage(
    therapist_id: int,
    plz_prefix: str | None = None,
    *,
    send_now: bool = False,
    queue_send: bool = False,
    actor: str = "staff",
    now: dt.datetime | None = None,
) -> Created:
    """Store a bundle for one therapist (docs/domain.md §6).

    ``send_now`` sends it at once in this process; with ``queue_send`` the workers send it
    instead (the console, whose kernels hold no signing key: ``sending.request_send``)."""
    now = now or utcnow()
    with write_transaction():
        bundling_lock()
        selection = select_for_therapist(
            snapshot.load(now, practice_of=therapist_id),
            params(),
            therapist_id,
            mode="staff",
            plz_prefix=plz_prefix,
        )
        raise_for(selection)
        (anfrage_id,) = write_bundles(
            [selection], ausloeser="personal", now=now, actor=actor, queue_sending=False
        )
    created = Created(anfrage_id, selection)
    if send_now:
        from .sending import request_send, send_anfrage

        try:
            if queue_send:
                request_send(anfrage_id, actor=actor, now=now)
                created.zum_versand = True
            else:
                send_anfrage(anfrage_id, actor=actor, now=now)
                created.gesendet = True
        except OperationError as error:  # the Anfrage stays, unsent (docs/domain.md §6.7)
            created.send_error = error.code
    return created


# --- automatic rounds ---------------------------------------------------------------------------


@dataclass
class RoundResult:
    created: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    bundles: list[Selection] = field(default_factory=list)
    therapists_considered: int = 0
    searches: int = 0
    disabled: bool = False
    dry_run: bool = False
    selection_s: float = 0.0

    @property
    def patients_offered(self) -> int:
        return sum(len(b.patients) for b in self.bundles)

    def summary(self) -> dict:
        reasons: dict[str, int] = {}
        for reason in self.skipped.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        return {
            "dry_run": self.dry_run,
            "disabled": self.disabled,
            "therapists_considered": self.therapists_considered,
            "searches": self.searches,
            "bundles": len(self.bundles),
            "patients_offered": self.patients_offered,
            "created": self.created,
            "skipped_by_reason": reasons,
        }


def run_bundle_round(
    now: dt.datetime | None = None,
    *,
    actor: str = "clock",
    dry_run: bool = False,
    respect_flag: bool = True,
) -> RoundResult:
    """One automatic round (docs/domain.md §6.1); idempotent for the same moment."""
    import time

    now = now or utcnow()
    flag = flags.auto_rounds()
    if respect_flag and not flag.enabled:
        return RoundResult(disabled=True, dry_run=dry_run)
    with write_transaction():
        bundling_lock()
        snap = snapshot.load(now)
        started = time.perf_counter()
        plan = plan_round(
            snap, params(), search_filter=lambda s: flags.in_rollout(s.id, flag.rollout_percent)
        )
        result = RoundResult(
            skipped=plan.skipped,
            bundles=plan.bundles,
            dry_run=dry_run,
            therapists_considered=plan.therapists_considered,
            searches=len(snap.searches),
            selection_s=time.perf_counter() - started,
        )
        if not dry_run and plan.bundles:
            result.created = write_bundles(
                plan.bundles, ausloeser="runde", now=now, actor=actor, queue_sending=True
            )
        if not dry_run:
            audit.record(
                actor,
                "bundle_round",
                "round",
                None,
                {
                    "bundles": len(plan.bundles),
                    "patients_offered": plan.patients_offered,
                    "considered": plan.therapists_considered,
                    "rollout_percent": flag.rollout_percent,
                },
                at=now,
            )
    return result
