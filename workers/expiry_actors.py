"""The daily expiry run (``operations.expiry.run_expiry``): closes sent Anfragen still
unanswered ``ANFRAGE_EXPIRY_DAYS`` after sending whose follow-up call did not reach the
therapist; audit actor "ablauf"."""

from __future__ import annotations

import logging

import dramatiq

from operations.expiry import run_expiry
from workers import broker, clock

broker.ensure()
log = logging.getLogger(__name__)


@dramatiq.actor(queue_name="default", periodic=clock.expiry_schedule(), max_retries=3)
def expire_anfragen():
    """Daily; a repeated delivery finds the closed Anfragen answered and changes nothing."""
    result = run_expiry()
    log.info("expiry: %d Anfragen closed without response", len(result["closed"]))
    return {"closed": len(result["closed"])}
