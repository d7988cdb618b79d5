"""Actors that exist only for ``psymatch bench``: the no-op baseline of a worker pool."""

from __future__ import annotations

import dramatiq

from workers import broker

broker.ensure()
COUNTER_KEY = "psymatch:bench:noop"


@dramatiq.actor(queue_name="bench", max_retries=0)
def noop():
    """Does nothing but count itself, so the bench knows when the pool has run them all."""
    dramatiq.get_broker().client.incr(COUNTER_KEY)
