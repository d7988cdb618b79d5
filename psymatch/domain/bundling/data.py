"""Plain input data of the selection: therapists, searches, parameters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from psymatch.domain.schedule import WEEKDAYS, canonical_weekday, parse_range

# A weekly schedule as (weekday index 0 = Monday, start minute, end minute) triples.
Ranges = tuple[tuple[int, int, int], ...]


_RANGE_CACHE: dict[str, tuple[int, int] | None] = {}
_DAY_CACHE: dict[str, int | None] = {}


def _range_minutes(text) -> tuple[int, int] | None:
    """Minutes of a "HH:MM-HH:MM" range, or None when malformed (cached: ranges repeat a lot)."""
    try:
        return _RANGE_CACHE[text]
    except KeyError:
        pass
    except TypeError:  # not hashable, so not a range either
        return None
    try:
        value = parse_range(text)
    except ValueError:
        value = None
    _RANGE_CACHE[text] = value
    return value


def _weekday_index(key) -> int | None:
    try:
        return _DAY_CACHE[key]
    except KeyError:
        day = canonical_weekday(key)
        _DAY_CACHE[key] = value = None if day is None else WEEKDAYS.index(day)
        return value
    except TypeError:
        return None


def minute_ranges(schedule) -> Ranges:
    """A stored weekly schedule as (weekday 0-6, start minute, end minute) triples.

    Lenient: unknown weekdays and malformed ranges are dropped, because stored
    data was validated on intake and selection must not fail on one bad range.
    Already converted ranges pass through unchanged.
    """
    if isinstance(schedule, tuple):
        return schedule
    out = []
    if not isinstance(schedule, dict):
        return ()
    for key, ranges in schedule.items():
        index = _weekday_index(key)
        if index is None or not isinstance(ranges, list | tuple):
            continue
        for text in ranges:
            minutes = _range_minutes(text)
            if minutes is not None:
                out.append((index, minutes[0], minutes[1]))
    return tuple(out)


@dataclass(frozen=True)
class Params:
    """The configuration values selection depends on (docs/domain.md §16)."""

    max_size: int = 6
    round_min_size: int = 3
    staff_min_size: int = 1
    parallel_cap: int = 5
    default_max_km: float = 25.0
    email_interval_days: int = 7
    earth_radius_km: float = 6371.0088
    plz_digits: int = 2

    @classmethod
    def from_settings(cls, s) -> Params:
        return cls(
            max_size=s.MAX_ANFRAGE_SIZE,
            round_min_size=s.ROUND_MIN_SIZE,
            staff_min_size=s.MIN_ANFRAGE_SIZE,
            parallel_cap=s.MAX_PARALLEL_ANFRAGEN,
            default_max_km=s.DEFAULT_MAX_DISTANCE_KM,
            email_interval_days=s.EMAIL_MIN_INTERVAL_DAYS,
            earth_radius_km=s.EARTH_RADIUS_KM,
            plz_digits=s.PLZ_MATCH_DIGITS,
        )


@dataclass(frozen=True)
class TherapistData:
    id: int
    nachname: str
    vorname: str = ""
    status: str = "aktiv"
    anrede: str | None = None
    titel: str | None = None
    email: str | None = None
    telefon: str | None = None
    strasse: str | None = None
    plz: str | None = None
    ort: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    geschlecht: str = "keine_Angabe"
    psychotherapieverfahren: str | None = None
    alter_min: int | None = None
    alter_max: int | None = None
    geschlechtspraeferenz: str | None = None
    bevorzugt_gruppentherapie: bool = False
    arbeitszeiten: Ranges = ()  # a schedule dict is converted by minute_ranges
    bevorzugte_symptome: tuple[str, ...] = ()
    potenziell_verfuegbar: bool = False
    ueber_curavani_informiert: bool = False
    naechster_kontakt_moeglich: dt.date | None = None
    # Has an unsent, or sent and neither answered nor closed, Anfrage (rule 3).
    has_pending_anfrage: bool = False
    # A permanent delivery failure marked the address invalid (domain §0.12): the address
    # still names the practice, but nobody is emailed at it, so rule 4 does not apply.
    email_ungueltig_seit: dt.datetime | None = None

    def __post_init__(self):
        if not isinstance(self.arbeitszeiten, tuple):
            object.__setattr__(self, "arbeitszeiten", minute_ranges(self.arbeitszeiten))


@dataclass(frozen=True)
class SearchData:
    id: int
    patient_id: int
    created_at: dt.datetime
    status: str = "aktiv"
    vermittelter_therapeut_id: int | None = None
    # Rows in status anstehend that belong to pending Anfragen (the parallel cap counts these).
    pending: int = 0
    # Therapist ids excluded by the search's or the patient's list (both forms already parsed).
    excluded: frozenset[int] = frozenset()
    latitude: float | None = None
    longitude: float | None = None
    plz: str | None = None
    max_km: float | None = None
    geschlecht: str = "keine_Angabe"
    bevorzugtes_therapeutengeschlecht: str | None = None
    bevorzugtes_therapieverfahren: str | None = None
    geburtsdatum: dt.date | None = None
    offen_fuer_gruppentherapie: bool | None = None
    zeitliche_verfuegbarkeit: Ranges = ()  # a schedule dict is converted by minute_ranges
    symptome: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.zeitliche_verfuegbarkeit, tuple):
            object.__setattr__(
                self, "zeitliche_verfuegbarkeit", minute_ranges(self.zeitliche_verfuegbarkeit)
            )


@dataclass(frozen=True)
class Snapshot:
    """Everything a selection looks at, taken at one moment.

    ``now`` is naive UTC, ``today`` the local calendar date (docs/domain.md
    conventions). ``email_last_queued`` maps a normalised email address to the
    last time an inquiry or reminder email was queued to it (rule 4); a snapshot of
    the whole country holds only the addresses written to within rule 4's interval.
    """

    therapists: tuple[TherapistData, ...]
    searches: tuple[SearchData, ...]
    now: dt.datetime
    today: dt.date
    email_last_queued: Mapping[str, dt.datetime] = field(default_factory=dict)


def parse_exclusions(*lists) -> frozenset[int]:
    """Therapist ids of exclusion lists in either form: ``7`` or ``{"id": 7, ...}``."""
    ids = set()
    for entries in lists:
        for entry in entries or ():
            value = entry.get("id") if isinstance(entry, dict) else entry
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, str) and value.strip().isdigit():
                ids.add(int(value))
    return frozenset(ids)


def age_in_years(birth: dt.date | None, today: dt.date) -> int | None:
    """Full years at ``today``; None when unknown."""
    if birth is None:
        return None
    years = today.year - birth.year
    if (today.month, today.day) < (birth.month, birth.day):
        years -= 1
    return years


def waiting_days(created_at: dt.datetime, now: dt.datetime) -> int:
    """Full days elapsed since the search started (docs/domain.md conventions)."""
    return max(0, int((now - created_at).total_seconds() // 86400))
