"""Actors around the bundle operations: the daily round and staff composition in the background."""

from __future__ import annotations

import logging

import dramatiq

from operations import OperationError
from operations.bundles import create_anfrage, run_bundle_round
from workers import broker, clock

broker.ensure()
log = logging.getLogger(__name__)


@dramatiq.actor(
    queue_name="bundling",
    periodic=clock.bundle_round_schedule(),
    max_retries=3,
    time_limit=15 * 60 * 1000,
)
def bundle_round():
    """The daily automatic round; a repeated delivery finds every practice pending and stops."""
    result = run_bundle_round(actor="clock")
    summary = result.summary()
    summary.pop("created")
    log.info("bundle round: %s", summary)
    return summary


@dramatiq.actor(queue_name="bundling", max_retries=3)
def compose_for_therapist(therapist_id: int, plz_prefix=None, send_now=False, actor="staff"):
    """Staff composition off the notebook's thread; refusals are answers, not failures."""
    try:
        return create_anfrage(therapist_id, plz_prefix, send_now=send_now, actor=actor).as_dict()
    except OperationError as error:
        log.info("composition for therapist %s refused: %s", therapist_id, error.code)
        return error.as_dict()
