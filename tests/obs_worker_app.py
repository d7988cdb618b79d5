"""A tiny Dramatiq app for tests/test_observability.py, run by the real ``dramatiq`` CLI.

psymatch's real broker (Redis from ``REDIS_URL``, every middleware, Prometheus included)
with one actor that only logs.
"""

from __future__ import annotations

import logging

import dramatiq

from workers import broker

broker.setup(broker.build_broker())

QUEUE = "obs_test"


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def obs_ping(number: int) -> None:
    logging.getLogger("obs_test").info("ping %d", number)
