"""Phone slot planning (docs/domain.md §8.2), pure.

``plan_call`` picks the day and time of a call from a weekly schedule of phone
windows (German or English keys, abbreviations too), the calls already booked,
and the callable days:

- callable: Monday to Friday and not a public holiday: the nationwide ones, plus
  those of the Bundesland when its ISO code (``BY``, ``BE`` ...) is known; an
  unknown code counts as "nationwide only";
- look at ``from_date + 1 … from_date + horizon_days`` (7; never the same day) and
  take the first callable day whose weekday has a window with a free slot: the
  first start, scanning every window from its start in ``step_minutes`` steps,
  at which ``call_minutes`` fit inside the window without overlapping a booked
  call. A day whose windows are fully booked is skipped;
- otherwise (no schedule, no usable window, all booked) the first callable day
  after ``from_date`` at ``default_time``.

Which calls block a slot is the caller's choice (``booked``); psymatch passes
every call that is not ``abgebrochen``: a completed or failed call happened at
its time, only a cancelled one frees it. A failed call does not block its
rescheduling, because rescheduling starts the day after the failure.

The fallback keeps the no-double-booking rule too: when ``default_time`` is taken
on that day, the next free step after it is used (and the next callable day when
the rest of the day is booked).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import holidays

from psymatch import settings
from psymatch.domain.schedule import WEEKDAYS, format_minutes, lenient_windows, parse_range

Booking = tuple[dt.date, int, int]  # (date, start minute, duration in minutes)
_DAY_MINUTES = 24 * 60
_FALLBACK_SEARCH_DAYS = 60


@dataclass(frozen=True)
class SlotParams:
    call_minutes: int = 5
    step_minutes: int = 5
    default_time: str = "12:00"
    horizon_days: int = 7

    @classmethod
    def for_therapist(cls, s: settings.Settings | None = None) -> SlotParams:
        s = s or settings.get()
        return cls(s.THERAPIST_CALL_MINUTES, s.PHONE_SLOT_STEP_MINUTES, s.DEFAULT_PHONE_CALL_TIME)

    @classmethod
    def for_patient(cls, s: settings.Settings | None = None) -> SlotParams:
        s = s or settings.get()
        return cls(s.PATIENT_CALL_MINUTES, s.PHONE_SLOT_STEP_MINUTES, s.DEFAULT_PATIENT_CALL_TIME)


def parse_time(text: str) -> int:
    """``"8:00"`` / ``"08:00"`` → minutes after midnight."""
    start, _ = parse_range(f"{text}-24:00")
    return start


@lru_cache(maxsize=256)
def _holiday_dates(code: str | None, year: int) -> frozenset[dt.date]:
    subdivision = code if code in holidays.Germany.subdivisions and len(code or "") == 2 else None
    return frozenset(holidays.Germany(subdiv=subdivision, years=year))


def is_callable_day(day: dt.date, bundesland_code: str | None = None) -> bool:
    code = bundesland_code.strip().upper() if isinstance(bundesland_code, str) else None
    return day.weekday() < 5 and day not in _holiday_dates(code, day.year)


def _busy_by_day(booked: Iterable[Booking]) -> dict[dt.date, list[tuple[int, int]]]:
    busy: dict[dt.date, list[tuple[int, int]]] = defaultdict(list)
    for day, start, duration in booked:
        busy[day].append((start, start + duration))
    return busy


def _free(start: int, length: int, busy: list[tuple[int, int]]) -> bool:
    return all(not (a < start + length and start < b) for a, b in busy)


def _first_free(ranges, length: int, step: int, busy) -> int | None:
    for window_start, window_end in ranges:
        start = window_start
        while start + length <= window_end:
            if _free(start, length, busy):
                return start
            start += step
    return None


def plan_call(
    windows,
    from_date: dt.date,
    booked: Iterable[Booking] = (),
    bundesland_code: str | None = None,
    params: SlotParams | None = None,
) -> tuple[dt.date, str]:
    """(date, ``"HH:MM"``) of the next call; see the module docstring."""
    params = params or SlotParams()
    schedule = lenient_windows(windows)
    busy = _busy_by_day(booked)
    length, step = params.call_minutes, params.step_minutes
    for offset in range(1, params.horizon_days + 1):
        day = from_date + dt.timedelta(days=offset)
        ranges = schedule.get(WEEKDAYS[day.weekday()])
        if not ranges or not is_callable_day(day, bundesland_code):
            continue
        start = _first_free(ranges, length, step, busy.get(day, []))
        if start is not None:
            return day, format_minutes(start)
    default = parse_time(params.default_time)
    for offset in range(1, _FALLBACK_SEARCH_DAYS + 1):
        day = from_date + dt.timedelta(days=offset)
        if not is_callable_day(day, bundesland_code):
            continue
        start = _first_free([(default, _DAY_MINUTES)], length, step, busy.get(day, []))
        if start is not None:
            return day, format_minutes(start)
    raise ValueError(f"no free call slot within {_FALLBACK_SEARCH_DAYS} days of {from_date}")
