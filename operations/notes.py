"""Append-only staff logs (``notizen``): lines ``[YYYY-MM-DD HH:MM (author)] text``."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from psymatch import settings


def line(now: dt.datetime, author: str, text: str) -> str:
    """One log line in local time for a naive-UTC ``now``."""
    local = now.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(settings.get().TIMEZONE))
    return f"[{local:%Y-%m-%d %H:%M} ({author})] {text}\n"


def append(existing: str | None, now: dt.datetime, author: str, text: str) -> str:
    return (existing or "") + line(now, author, text)
