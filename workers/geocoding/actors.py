"""Geocoding actors: thin wrappers around ``workers.geocoding.plz``."""

from __future__ import annotations

import logging

import dramatiq
from periodiq import cron

from db import plz as plz_table
from workers import broker

from .plz import locate_backlog

broker.ensure()
log = logging.getLogger(__name__)


@dramatiq.actor(queue_name="geocoding", periodic=cron("17 * * * *"), max_retries=3)
def geocode_backlog():
    """Hourly: give every record without (current) coordinates its PLZ centroid."""
    counts = locate_backlog(plz_table.centroid_map())
    if counts["located"] or counts["unknown_plz"]:
        log.info("geocoding backlog: %(located)d located, %(unknown_plz)d unknown PLZ", counts)
    return counts
