"""The daily GDPR retention run (``operations.privacy.run_retention``): erases the
patients whose searches all closed more than ``RETENTION_DAYS`` ago, actor "retention"."""

from __future__ import annotations

import logging

import dramatiq

from operations.privacy import run_retention
from workers import broker, clock

broker.ensure()
log = logging.getLogger(__name__)

RETENTION_TIME = "03:30"  # local time, outside office hours and the bundle round


@dramatiq.actor(
    queue_name="default",
    periodic=clock.daily(RETENTION_TIME),
    max_retries=3,
    time_limit=60 * 60 * 1000,
)
def retention():
    """Erase what is due; a repeated delivery finds nothing left to erase."""
    result = run_retention()
    log.info(
        "retention: %s eligible, %s erased, %s skipped",
        result["eligible"],
        result["erased"],
        result["skipped"],
    )
    return result
