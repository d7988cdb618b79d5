"""The metrics of docs/domain.md §14, as pure functions over plain rows.

Nothing here reads the database or the clock: ``console/metrics_queries.py``
loads the rows, the caller passes ``now`` and the time zone. Timestamps are naive UTC
(as stored); calendar dates are local dates in ``zone``.

Names follow section 14: the reference metrics (``average_acceptance_rate``,
``average_anfrage_size``, ``response_rate``, ``list_summary``) and the business metrics
(Vermittlungsgeschwindigkeit, Annahmerate, Ablehnungsquote, Anfrageeffizienz,
Konfliktrate, Show-Rate, Antwortrate 7 Tage, Abkühlungseinhaltung, Parallele Suche).
Every rate is a ``Ratio`` that keeps numerator and denominator; its value is 0.0 when
the denominator is 0.

Range rules of the dashboard (``compute``): an Anfrage belongs to the range by the local
date of its ``erstellt_datum``; Antwortrate 7 Tage and Abkühlungseinhaltung look at the
Anfragen *sent* in the range; placement days at the searches that became ``erfolgreich``
in the range; Konfliktrate and Show-Rate at the bundle lines of the Anfragen in the
range; Parallele Suche is a snapshot of the searches as they are now.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from . import vocab

ACCEPTED_ANSWERS = vocab.ANNAHME_ERGEBNISSE
DAY = dt.timedelta(days=1)


# --- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnfrageRow:
    id: int
    therapist_id: int
    erstellt_datum: dt.datetime
    anfragegroesse: int
    gesendet_datum: dt.datetime | None = None
    antwort_datum: dt.datetime | None = None
    antworttyp: str | None = None
    angenommen_anzahl: int = 0
    abgelehnt_anzahl: int = 0
    # practice group (docs/domain.md §3): the normalised email, or the therapist id alone
    practice: str = ""

    @property
    def sent(self) -> bool:
        return self.gesendet_datum is not None

    @property
    def pending(self) -> bool:
        return self.antwort_datum is None

    @property
    def answered(self) -> bool:
        """Answered as in docs/domain.md §3: a response recorded, not closed without one."""
        return self.antwort_datum is not None and self.antworttyp != "keine_Antwort"


@dataclass(frozen=True)
class LineRow:
    """One bundle line (TherapeutAnfragePatient)."""

    anfrage_id: int
    platzsuche_id: int
    status: str
    antwortergebnis: str | None = None


@dataclass(frozen=True)
class SearchRow:
    id: int
    status: str
    created_at: dt.datetime
    erfolgreiche_vermittlung_datum: dt.datetime | None = None


@dataclass(frozen=True)
class Ratio:
    numerator: float
    denominator: float

    @property
    def value(self) -> float:
        return self.numerator / self.denominator if self.denominator else 0.0


def local_date(moment: dt.datetime, zone: str | ZoneInfo) -> dt.date:
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    return moment.replace(tzinfo=dt.UTC).astimezone(tz).date()


# --- reference metrics (exact) -------------------------------------------------------------


def average_acceptance_rate(anfragen: Iterable[AnfrageRow]) -> Ratio:
    """Σ angenommen_anzahl / Σ anfragegroesse."""
    rows = list(anfragen)
    return Ratio(sum(a.angenommen_anzahl for a in rows), sum(a.anfragegroesse for a in rows))


def average_anfrage_size(anfragen: Iterable[AnfrageRow]) -> Ratio:
    """Σ anfragegroesse / number of Anfragen."""
    rows = list(anfragen)
    return Ratio(sum(a.anfragegroesse for a in rows), len(rows))


def response_rate(anfragen: Iterable[AnfrageRow]) -> Ratio:
    """Answered Anfragen / number of Anfragen."""
    rows = list(anfragen)
    return Ratio(sum(1 for a in rows if a.answered), len(rows))


def days_since_sent(anfrage: AnfrageRow, now: dt.datetime) -> int | None:
    """tage_seit_versand: full days since gesendet_datum (None if unsent)."""
    if anfrage.gesendet_datum is None:
        return None
    return (now - anfrage.gesendet_datum) // DAY


def needs_follow_up(anfrage: AnfrageRow, now: dt.datetime, threshold_days: int = 7) -> bool:
    """nachverfolgung_erforderlich: sent, pending and at least the threshold in days old."""
    days = days_since_sent(anfrage, now)
    return days is not None and anfrage.pending and days >= threshold_days


def list_summary(
    anfragen: Iterable[AnfrageRow], now: dt.datetime, threshold_days: int = 7
) -> dict[str, int]:
    rows = list(anfragen)
    return {
        "total_anfragen": len(rows),
        "unsent_anfragen": sum(1 for a in rows if not a.sent),
        "pending_responses": sum(1 for a in rows if a.sent and a.pending),
        "needing_follow_up": sum(1 for a in rows if needs_follow_up(a, now, threshold_days)),
    }


# --- business metrics --------------------------------------------------------------------------


def placement_days(searches: Iterable[SearchRow], zone: str | ZoneInfo) -> list[int]:
    """Vermittlungsgeschwindigkeit per erfolgreich search: local date placed - date started."""
    return [
        (local_date(s.erfolgreiche_vermittlung_datum, zone) - local_date(s.created_at, zone)).days
        for s in searches
        if s.status == "erfolgreich" and s.erfolgreiche_vermittlung_datum is not None
    ]


def mean_median(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), float(statistics.median(values))


def annahmerate(anfragen: Iterable[AnfrageRow]) -> Ratio:
    """average_acceptance_rate restricted to answered Anfragen."""
    return average_acceptance_rate(a for a in anfragen if a.answered)


def ablehnungsquote(anfragen: Iterable[AnfrageRow]) -> Ratio:
    """Σ abgelehnt_anzahl / Σ anfragegroesse over answered Anfragen."""
    rows = [a for a in anfragen if a.answered]
    return Ratio(sum(a.abgelehnt_anzahl for a in rows), sum(a.anfragegroesse for a in rows))


def anfrageeffizienz(anfragen: Iterable[AnfrageRow]) -> Ratio:
    """Σ angenommen_anzahl / number of answered Anfragen."""
    rows = [a for a in anfragen if a.answered]
    return Ratio(sum(a.angenommen_anzahl for a in rows), len(rows))


def konfliktrate(lines: Iterable[LineRow]) -> Ratio:
    """Searches with >= 2 accepted answers / searches with >= 1 accepted answer."""
    accepted: dict[int, int] = defaultdict(int)
    for line in lines:
        if line.antwortergebnis in ACCEPTED_ANSWERS:
            accepted[line.platzsuche_id] += 1
    return Ratio(sum(1 for n in accepted.values() if n >= 2), len(accepted))


def show_rate(lines: Iterable[LineRow]) -> Ratio:
    """Rows with in_Sitzungen / rows with in_Sitzungen or nicht_erschienen."""
    outcomes = [li.antwortergebnis for li in lines]
    shown = outcomes.count("in_Sitzungen")
    return Ratio(shown, shown + outcomes.count("nicht_erschienen"))


def antwortrate_7_tage(anfragen: Iterable[AnfrageRow], now: dt.datetime, days: int = 7) -> Ratio:
    """Among Anfragen sent >= 7 days ago: answered within 7 x 24 h of sending."""
    window = days * DAY
    old_enough = [a for a in anfragen if a.sent and now - a.gesendet_datum >= window]
    quick = sum(
        1 for a in old_enough if a.answered and a.antwort_datum - a.gesendet_datum <= window
    )
    return Ratio(quick, len(old_enough))


def cooling_compliant(
    anfrage: AnfrageRow,
    history: Sequence[AnfrageRow],
    overrides: Sequence[dt.datetime],
    zone: str | ZoneInfo,
    cooling_days: int = 28,
) -> bool:
    """Abkühlungseinhaltung for one sent Anfrage (docs/domain.md §14).

    ``history``: the Anfragen of the same practice group; ``overrides``: when a cooling
    override was recorded for a member of the group.
    """
    sent = anfrage.gesendet_datum
    responses = [a.antwort_datum for a in history if a.answered and a.antwort_datum < sent]
    if not responses:
        return True
    latest = max(responses)
    if local_date(sent, zone) >= local_date(latest, zone) + dt.timedelta(days=cooling_days):
        return True
    return any(latest <= at <= sent for at in overrides)


def abkuehlungseinhaltung(
    sent_in_range: Iterable[AnfrageRow],
    all_anfragen: Iterable[AnfrageRow],
    overrides: dict[str, list[dt.datetime]],
    zone: str | ZoneInfo,
    cooling_days: int = 28,
) -> Ratio:
    """Share of sent Anfragen that respected the cooling period of their practice group."""
    by_practice: dict[str, list[AnfrageRow]] = defaultdict(list)
    for a in all_anfragen:
        by_practice[a.practice].append(a)
    rows = [a for a in sent_in_range if a.sent]
    compliant = sum(
        1
        for a in rows
        if cooling_compliant(
            a, by_practice[a.practice], overrides.get(a.practice, []), zone, cooling_days
        )
    )
    return Ratio(compliant, len(rows))


def parallele_suche(
    searches: Iterable[SearchRow], lines: Iterable[LineRow], anfragen: Iterable[AnfrageRow]
) -> Ratio:
    """Mean over aktiv searches of the distinct sent, pending Anfragen containing them."""
    open_ids = {a.id for a in anfragen if a.sent and a.pending}
    per_search: dict[int, set[int]] = defaultdict(set)
    for line in lines:
        if line.anfrage_id in open_ids:
            per_search[line.platzsuche_id].add(line.anfrage_id)
    aktiv = [s.id for s in searches if s.status == "aktiv"]
    return Ratio(sum(len(per_search[s]) for s in aktiv), len(aktiv))


# --- time series and histogram -----------------------------------------------------------------


def week_start(day: dt.date) -> dt.date:
    """The Monday of the ISO week containing ``day``."""
    return day - dt.timedelta(days=day.weekday())


def weekly_rates(anfragen: Iterable[AnfrageRow], zone: str | ZoneInfo) -> list[dict]:
    """Per week of sending (Monday): sent count, Antwortrate (response_rate) and Annahmerate.

    Only sent Anfragen count: an unsent one has no week yet. Weeks without any sent
    Anfrage between the first and the last are listed with zeros.
    """
    by_week: dict[dt.date, list[AnfrageRow]] = defaultdict(list)
    for a in anfragen:
        if a.sent:
            by_week[week_start(local_date(a.gesendet_datum, zone))].append(a)
    if not by_week:
        return []
    weeks, day = [], min(by_week)
    while day <= max(by_week):
        weeks.append(day)
        day += dt.timedelta(days=7)
    return [
        {
            "woche": week,
            "gesendet": len(by_week[week]),
            "antwortrate": response_rate(by_week[week]),
            "annahmerate": annahmerate(by_week[week]),
        }
        for week in weeks
    ]


# --- staff work (issue 15 point 9) -------------------------------------------------------------

# Audit actors that are machines or the people psymatch writes to, not staff.
AUTOMATIC_ACTORS = frozenset(
    {"system", "clock", "automatisch", "retention", "email", "link", "patient", "release"}
)
# Audit actions that record what a machine did (on a staff member's behalf at most) or an
# operator's maintenance, not a staff action: counting them would count a send twice.
NOT_STAFF_ACTIONS = frozenset(
    {
        "send_anfrage",
        "follow_up",
        "conflict_notice",
        "placement_reminder",
        "new_call",
        "db_upgrade",
        "db_downgrade",
        "crypto_rotate_started",
        "crypto_rotate",
        "demo_data",
        "retention_run",
    }
)


def is_staff_action(actor: str | None, action: str) -> bool:
    """An audit row that a staff member's click or command caused."""
    return bool(actor) and actor not in AUTOMATIC_ACTORS and action not in NOT_STAFF_ACTIONS


def weekly_staff_actions(
    moments: Iterable[dt.datetime], placements: Iterable[dt.datetime], zone, start, end
) -> list[dict]:
    """Per local week (Monday) in ``start``..``end``: staff actions, placements, and
    actions per placement (None without placements)."""
    actions: dict[dt.date, int] = defaultdict(int)
    placed: dict[dt.date, int] = defaultdict(int)
    for at in moments:
        day = local_date(at, zone)
        if start <= day <= end:
            actions[week_start(day)] += 1
    for at in placements:
        day = local_date(at, zone)
        if start <= day <= end:
            placed[week_start(day)] += 1
    weeks = sorted(set(actions) | set(placed))
    return [
        {
            "woche": week,
            "aktionen": actions[week],
            "vermittlungen": placed[week],
            "je_vermittlung": Ratio(actions[week], placed[week]),
        }
        for week in weeks
    ]


def histogram(values: Sequence[int], width: int = 7) -> list[tuple[int, int, int]]:
    """(from, to inclusive, count) bins of ``width`` days covering every value."""
    if width < 1:
        raise ValueError("bin width must be at least 1")
    if not values:
        return []
    low = (min(values) // width) * width
    high = max(values)
    bins = []
    start = low
    while start <= high:
        end = start + width - 1
        bins.append((start, end, sum(1 for v in values if start <= v <= end)))
        start += width
    return bins


# --- everything for one date range -----------------------------------------------------------


@dataclass(frozen=True)
class MetricData:
    """All rows the dashboard needs (loaded once, filtered here)."""

    anfragen: tuple[AnfrageRow, ...] = ()
    lines: tuple[LineRow, ...] = ()
    searches: tuple[SearchRow, ...] = ()
    # practice group -> when a cooling override was recorded for one of its members
    overrides: dict[str, list[dt.datetime]] = field(default_factory=dict)
    # when each staff action happened (audit rows, ``is_staff_action``)
    staff_actions: tuple[dt.datetime, ...] = ()


@dataclass(frozen=True)
class Report:
    start: dt.date
    end: dt.date
    figures: list[tuple[str, str, float | None, float | None, float | None]]
    weekly: list[dict]
    placement: list[tuple[int, int]]  # (platzsuche_id, days)
    staff_weekly: list[dict] = field(default_factory=list)

    def figure(self, name: str) -> float | None:
        for label, _unit, value, _num, _den in self.figures:
            if label == name:
                return value
        raise KeyError(name)


def _in(day: dt.date, start: dt.date, end: dt.date) -> bool:
    return start <= day <= end


def compute(
    data: MetricData,
    start: dt.date,
    end: dt.date,
    now: dt.datetime,
    zone: str | ZoneInfo,
    *,
    threshold_days: int = 7,
    cooling_days: int = 28,
) -> Report:
    """Every metric of section 14 for the local dates ``start``..``end`` (inclusive).

    Raises ``ValueError`` when the range is empty or reversed.
    """
    if start is None or end is None:
        raise ValueError("choose a start and an end date")
    if start > end:
        raise ValueError(f"start {start} lies after end {end}")
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    created = [a for a in data.anfragen if _in(local_date(a.erstellt_datum, tz), start, end)]
    sent = [
        a for a in data.anfragen if a.sent and _in(local_date(a.gesendet_datum, tz), start, end)
    ]
    created_ids = {a.id for a in created}
    lines = [li for li in data.lines if li.anfrage_id in created_ids]
    placed = [
        s
        for s in data.searches
        if s.erfolgreiche_vermittlung_datum is not None
        and _in(local_date(s.erfolgreiche_vermittlung_datum, tz), start, end)
    ]
    days = placement_days(placed, tz)
    mean, median = mean_median(days)
    staff = [at for at in data.staff_actions if _in(local_date(at, tz), start, end)]
    summary = list_summary(created, now, threshold_days)

    def ratio(label: str, unit: str, r: Ratio):
        return (label, unit, r.value, r.numerator, r.denominator)

    figures = [
        ("Anfragen gesamt", "Anzahl", summary["total_anfragen"], None, None),
        ("Anfragen ungesendet", "Anzahl", summary["unsent_anfragen"], None, None),
        ("Antworten ausstehend", "Anzahl", summary["pending_responses"], None, None),
        ("Nachverfolgung nötig", "Anzahl", summary["needing_follow_up"], None, None),
        ratio("Durchschnittliche Anfragegröße", "Patienten", average_anfrage_size(created)),
        ratio("Durchschnittliche Annahmerate", "Anteil", average_acceptance_rate(created)),
        ratio("Antwortrate", "Anteil", response_rate(created)),
        ratio("Annahmerate", "Anteil", annahmerate(created)),
        ratio("Ablehnungsquote", "Anteil", ablehnungsquote(created)),
        ratio("Anfrageeffizienz", "Annahmen je Antwort", anfrageeffizienz(created)),
        ratio("Konfliktrate", "Anteil", konfliktrate(lines)),
        ratio("Show-Rate", "Anteil", show_rate(lines)),
        ratio("Antwortrate 7 Tage", "Anteil", antwortrate_7_tage(sent, now, threshold_days)),
        ratio(
            "Abkühlungseinhaltung",
            "Anteil",
            abkuehlungseinhaltung(sent, data.anfragen, data.overrides, tz, cooling_days),
        ),
        ratio(
            "Parallele Suche (aktuell)",
            "Anfragen je Suche",
            parallele_suche(data.searches, data.lines, data.anfragen),
        ),
        ("Vermittlungen", "Anzahl", len(days), None, None),
        ("Vermittlungstage Mittelwert", "Tage", mean, None, None),
        ("Vermittlungstage Median", "Tage", median, None, None),
        ("Mitarbeiteraktionen", "Anzahl", len(staff), None, None),
        (
            "Mitarbeiteraktionen je Vermittlung",
            "Aktionen",
            len(staff) / len(days) if days else None,
            len(staff),
            len(days),
        ),
    ]
    placement = [
        (s.id, d)
        for s, d in zip([s for s in placed if s.status == "erfolgreich"], days, strict=True)
    ]
    staff_weekly = weekly_staff_actions(
        staff, [s.erfolgreiche_vermittlung_datum for s in placed], tz, start, end
    )
    return Report(start, end, figures, weekly_rates(sent, tz), placement, staff_weekly)


CSV_HEADER = ("abschnitt", "schluessel", "kennzahl", "einheit", "wert", "zaehler", "nenner")


def csv_rows(report: Report) -> list[tuple]:
    """The report as flat rows (``CSV_HEADER``): key figures, weekly rates, placements."""
    rows: list[tuple] = []
    key = f"{report.start.isoformat()}..{report.end.isoformat()}"
    for label, unit, value, num, den in report.figures:
        rows.append(("Kennzahl", key, label, unit, value, num, den))
    for week in report.weekly:
        monday = week["woche"].isoformat()
        rows.append(("Woche", monday, "Gesendet", "Anzahl", week["gesendet"], None, None))
        for name, label in (("antwortrate", "Antwortrate"), ("annahmerate", "Annahmerate")):
            r = week[name]
            rows.append(("Woche", monday, label, "Anteil", r.value, r.numerator, r.denominator))
    for week in report.staff_weekly:
        monday = week["woche"].isoformat()
        rows.append(("Woche", monday, "Mitarbeiteraktionen", "Anzahl", week["aktionen"], None,
                     None))  # fmt: skip
        r = week["je_vermittlung"]
        rows.append(("Woche", monday, "Mitarbeiteraktionen je Vermittlung", "Aktionen", r.value,
                     r.numerator, r.denominator))  # fmt: skip
    for search_id, days in report.placement:
        rows.append(("Vermittlung", f"Platzsuche {search_id}", "Vermittlungstage", "Tage", days,
                     None, None))  # fmt: skip
    return rows
