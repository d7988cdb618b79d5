"""The actor that processes a stored inbound reply (queue ``replies``).

Messages come from the outbox item ``process_reply`` that ``store_inbound`` writes in the
same transaction as the reply. ``process_inbound`` does nothing for a reply that is no
longer ``neu``, so a second delivery of the message is harmless.
"""

from __future__ import annotations

import dramatiq

from operations import replies as inbound
from workers import broker

broker.ensure()


@dramatiq.actor(queue_name="replies", max_retries=10, min_backoff=5_000, max_backoff=600_000)
def process_reply(inbound_id: int) -> str:
    """Process one inbound reply; returns its status afterwards."""
    return inbound.process_inbound(inbound_id)
