"""Reading what staff type: dates in German notation and bounded free text.

A browser date picker turns an impossible date into "no date", which a form then read as
"none given" (a cooling override became "kontaktierbar ab sofort"). Dates are therefore
typed as text and parsed strictly here; what cannot be read is refused with a German
message and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import re

from operations.errors import OperationError

MAX_TEXT = 500
_GERMAN_DATE = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s*$")
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")


def parse_date(text: str, *, field: str = "Datum") -> dt.date:
    """``TT.MM.JJJJ`` (or ISO ``JJJJ-MM-TT``) to a date; anything else -> INVALID_DATE."""
    text = text or ""
    german = _GERMAN_DATE.match(text)
    iso = _ISO_DATE.match(text)
    if german:
        day, month, year = (int(g) for g in german.groups())
    elif iso:
        year, month, day = (int(g) for g in iso.groups())
    else:
        raise OperationError(
            "INVALID_DATE",
            f"{field} „{text.strip()}“ ist kein Datum (bitte TT.MM.JJJJ)",
            details={"field": field},
        )
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise OperationError(
            "INVALID_DATE",
            f"{field} „{text.strip()}“ gibt es nicht im Kalender",
            details={"field": field},
        ) from None


def date_within(text: str, today: dt.date, *, field: str = "Datum", max_days: int = 730) -> dt.date:
    """A parsed date from today up to ``max_days`` ahead (default two years)."""
    day = parse_date(text, field=field)
    if day < today:
        raise OperationError(
            "INVALID_DATE",
            f"{field} {day:%d.%m.%Y} liegt in der Vergangenheit",
            details={"field": field},
        )
    if day > today + dt.timedelta(days=max_days):
        raise OperationError(
            "INVALID_DATE",
            f"{field} {day:%d.%m.%Y} liegt mehr als {max_days // 365} Jahre in der Zukunft",
            details={"field": field},
        )
    return day


def bounded_text(text: str, *, field: str = "Text", limit: int = MAX_TEXT) -> str:
    """Free text up to ``limit`` characters, stripped; longer -> TEXT_TOO_LONG."""
    text = (text or "").strip()
    if len(text) > limit:
        raise OperationError(
            "TEXT_TOO_LONG",
            f"{field} hat {len(text)} Zeichen, erlaubt sind {limit}",
            details={"field": field},
        )
    return text
