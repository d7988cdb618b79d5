"""Schedules of the clock process (periodiq), all from settings.

Daily times are local (``TIMEZONE``): the Procfile starts the clock with
``TZ`` set to it, and periodiq evaluates cron specs in the process's zone.
"""

from __future__ import annotations

from periodiq import cron

from psymatch import settings


def daily(hhmm: str):
    """A periodiq cron for every day at ``HH:MM``."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    return cron(f"{minute} {hour} * * *")


def bundle_round_schedule():
    return daily(settings.get().BUNDLE_ROUND_TIME)


def follow_up_schedule():
    return daily(settings.get().FOLLOW_UP_RUN_TIME)


def expiry_schedule():
    return daily(settings.get().ANFRAGE_EXPIRY_TIME)


def every(setting: str):
    """A periodiq cron from a cron-syntax setting, e.g. ``OUTBOX_RELAY_CRON``."""
    return cron(getattr(settings.get(), setting))
