"""Weekly schedules: patient availability, therapist working hours and phone windows.

A schedule is a mapping weekday -> list of "H:MM-HH:MM" ranges (docs/domain.md §3).
Keys may be German names (canonical), two-letter German abbreviations or English
names, in any case. ``parse_schedule`` normalises to canonical German keys and
"HH:MM-HH:MM" ranges, or raises ``ScheduleError`` naming the offending part.
"""

from __future__ import annotations

import re

WEEKDAYS = ("montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag")
GERMAN_NAMES = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
_ABBREVIATIONS = ("mo", "di", "mi", "do", "fr", "sa", "so")
_ENGLISH = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_KEY_TO_CANONICAL = {}
for _i, _day in enumerate(WEEKDAYS):
    for _alias in (_day, _ABBREVIATIONS[_i], _ENGLISH[_i]):
        _KEY_TO_CANONICAL[_alias] = _day

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ScheduleError(ValueError):
    """A weekly schedule that does not follow the documented format."""


def canonical_weekday(key: str) -> str | None:
    """Return the canonical German weekday for any accepted alias, else None."""
    if not isinstance(key, str):
        return None
    return _KEY_TO_CANONICAL.get(key.strip().lower())


def parse_range(text: str) -> tuple[int, int]:
    """Parse "H:MM-HH:MM" into (start_minute, end_minute); start < end required."""
    if not isinstance(text, str):
        raise ScheduleError(f"time range must be a string like '09:00-12:00', got {text!r}")
    match = _RANGE.match(text)
    if not match:
        raise ScheduleError(f"malformed time range {text!r} (expected 'HH:MM-HH:MM')")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ScheduleError(f"impossible time in range {text!r}")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= end:
        raise ScheduleError(f"time range {text!r} must start before it ends")
    return start, end


def format_minutes(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_schedule(value, *, require_slot: bool = False) -> dict[str, list[str]]:
    """Validate and normalise a weekly schedule.

    Returns a dict with canonical German weekday keys in Monday-to-Sunday order
    and ranges formatted "HH:MM-HH:MM". ``None`` or ``{}`` yield ``{}`` unless
    ``require_slot`` is set, which demands at least one range.
    """
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ScheduleError("schedule must be an object mapping weekdays to lists of time ranges")
    merged: dict[str, list[str]] = {}
    for key, ranges in value.items():
        day = canonical_weekday(key)
        if day is None:
            raise ScheduleError(f"unknown weekday {key!r}")
        if isinstance(ranges, str):
            ranges = [ranges]
        if not isinstance(ranges, list):
            raise ScheduleError(f"ranges for {key!r} must be a list of 'HH:MM-HH:MM' strings")
        for text in ranges:
            start, end = parse_range(text)
            merged.setdefault(day, []).append(f"{format_minutes(start)}-{format_minutes(end)}")
    if require_slot and not any(merged.values()):
        raise ScheduleError("schedule needs at least one time range")
    return {day: sorted(merged[day]) for day in WEEKDAYS if merged.get(day)}


def weekly_hours(schedule: dict[str, list[str]]) -> float:
    """Sum of all range lengths in hours (docs/domain.md §15); not a gate, a figure to show."""
    total = 0
    for ranges in (schedule or {}).values():
        for text in ranges:
            start, end = parse_range(text)
            total += end - start
    return total / 60.0


def lenient_windows(value) -> dict[str, list[tuple[int, int]]]:
    """The well-formed part of a stored schedule: canonical weekday -> sorted minute ranges.

    For reading data that was validated on intake but may have been edited since
    (phone windows, availability in emails): unknown keys and malformed ranges are
    dropped instead of failing the whole schedule.
    """
    if not isinstance(value, dict):
        return {}
    found: dict[str, list[tuple[int, int]]] = {}
    for key, ranges in value.items():
        day = canonical_weekday(key)
        if day is None:
            continue
        if isinstance(ranges, str):
            ranges = [ranges]
        if not isinstance(ranges, list | tuple):
            continue
        for text in ranges:
            try:
                found.setdefault(day, []).append(parse_range(text))
            except ScheduleError:
                continue
    return {day: sorted(found[day]) for day in WEEKDAYS if found.get(day)}
