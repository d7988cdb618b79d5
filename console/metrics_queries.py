"""Rows behind the dashboard (docs/domain.md §14): plain ``psymatch.domain.metrics`` rows.

Read-only. ``load`` reads the Anfragen (with the practice group of their therapist),
the bundle lines, the searches and the cooling overrides of the audit log; the pure
``metrics.compute`` does the filtering by date range and the arithmetic.
"""

from __future__ import annotations

import datetime as dt

from db.models import AuditLog, Platzsuche, TherapeutAnfragePatient, Therapeutenanfrage, Therapist
from psymatch import settings
from psymatch.domain import metrics


def practice_key(therapist_id: int, email: str | None) -> str:
    """The practice group (docs/domain.md §3): the normalised email, else the therapist alone."""
    address = (email or "").strip().lower()
    return f"email:{address}" if address else f"therapist:{therapist_id}"


def practices(ids=None) -> dict[int, str]:
    """Practice keys by therapist id: of every therapist, or only of ``ids``."""
    query = Therapist.select(Therapist.id, Therapist.email)
    if ids is not None:
        query = query.where(Therapist.id.in_(sorted(ids)))
    return {t_id: practice_key(t_id, email) for t_id, email in query.tuples()}


def load() -> metrics.MetricData:
    """Every row the metrics need, as plain data."""
    a = Therapeutenanfrage
    anfrage_rows = list(
        a.select(
            a.id,
            a.therapist,
            a.erstellt_datum,
            a.gesendet_datum,
            a.antwort_datum,
            a.antworttyp,
            a.anfragegroesse,
            a.angenommen_anzahl,
            a.abgelehnt_anzahl,
        )
        .order_by(a.id)
        .tuples()
    )
    query = AuditLog.select(AuditLog.entity_id, AuditLog.at).where(
        (AuditLog.action == "override_cooling") & (AuditLog.entity == "therapist")
    )
    override_rows = list(query.tuples())
    # only the therapists named by an Anfrage or an override (not all of Germany's)
    groups = practices(
        {row[1] for row in anfrage_rows} | {int(e) for e, _ in override_rows if e and e.isdigit()}
    )
    anfragen = tuple(
        metrics.AnfrageRow(
            id=row[0],
            therapist_id=row[1],
            erstellt_datum=row[2],
            gesendet_datum=row[3],
            antwort_datum=row[4],
            antworttyp=row[5],
            anfragegroesse=row[6],
            angenommen_anzahl=row[7],
            abgelehnt_anzahl=row[8],
            practice=groups.get(row[1], f"therapist:{row[1]}"),
        )
        for row in anfrage_rows
    )
    t = TherapeutAnfragePatient
    lines = tuple(
        metrics.LineRow(anfrage_id, search_id, status, outcome)
        for anfrage_id, search_id, status, outcome in t.select(
            t.therapeutenanfrage, t.platzsuche, t.status, t.antwortergebnis
        )
        .order_by(t.id)
        .tuples()
    )
    s = Platzsuche
    searches = tuple(
        metrics.SearchRow(*row)
        for row in s.select(s.id, s.status, s.created_at, s.erfolgreiche_vermittlung_datum)
        .order_by(s.id)
        .tuples()
    )
    overrides: dict[str, list[dt.datetime]] = {}
    for entity_id, at in override_rows:
        key = groups.get(int(entity_id)) if entity_id and entity_id.isdigit() else None
        if key:
            overrides.setdefault(key, []).append(at)
    staff_query = AuditLog.select(AuditLog.at).where(
        AuditLog.actor.not_in(sorted(metrics.AUTOMATIC_ACTORS))
        & AuditLog.action.not_in(sorted(metrics.NOT_STAFF_ACTIONS))
        & AuditLog.actor.is_null(False)
        & (AuditLog.actor != "")
    )
    staff_actions = tuple(at for (at,) in staff_query.tuples())
    return metrics.MetricData(anfragen, lines, searches, overrides, staff_actions)


def report(start: dt.date, end: dt.date, now: dt.datetime) -> metrics.Report:
    """The dashboard's report for a local date range (``ValueError`` for a bad range)."""
    s = settings.get()
    metrics.compute(metrics.MetricData(), start, end, now, s.TIMEZONE)  # validate first, cheap
    return metrics.compute(
        load(),
        start,
        end,
        now,
        s.TIMEZONE,
        threshold_days=s.FOLLOW_UP_THRESHOLD_DAYS,
        cooling_days=7 * s.COOLING_PERIOD_WEEKS,
    )
