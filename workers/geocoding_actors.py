"""Geocoding actors: thin wrappers around ``operations.geocoding.plz`` and ``.nominatim``."""

from __future__ import annotations

import logging

import dramatiq

from db import plz as plz_table
from operations.geocoding import nominatim
from operations.geocoding.plz import locate_backlog
from psymatch import settings
from workers import broker, clock

broker.ensure()
log = logging.getLogger(__name__)


@dramatiq.actor(queue_name="geocoding", periodic=clock.every("GEOCODING_CRON"), max_retries=3)
def geocode_backlog():
    """Hourly: give every record without (current) coordinates its PLZ centroid."""
    counts = locate_backlog(plz_table.centroid_map())
    if counts["located"] or counts["unknown_plz"]:
        log.info("geocoding backlog: %(located)d located, %(unknown_plz)d unknown PLZ", counts)
    return counts


@dramatiq.actor(queue_name="geocoding", max_retries=5, min_backoff=60_000, max_backoff=3_600_000)
def geocode_address(kind: str, record_id: int):
    """Street-level location of one patient ("patient") or therapist ("therapist").

    Transient failures (429, timeout, server error, no rate-limit slot) raise so
    that Dramatiq retries with backoff; the record keeps its PLZ centroid meanwhile.
    """
    status = nominatim.geocode_record(kind, record_id)
    if status in nominatim.TRANSIENT:
        raise nominatim.RetryLater(f"{kind} {record_id}: {status}")
    return status


@dramatiq.actor(
    queue_name="geocoding", periodic=clock.every("ADDRESS_GEOCODING_CRON"), max_retries=0
)
def geocode_address_backlog():
    """Hourly, when NOMINATIM_URL is set: enqueue street-level lookups (one per second
    are made; 500 per hour stay well inside that)."""
    if not settings.get().NOMINATIM_URL:
        return 0
    targets = nominatim.backlog(limit=500)
    for kind, record_id in targets:
        geocode_address.send(kind, record_id)
    return len(targets)
