"""The actors that process stored inbound replies and link clicks (queue ``replies``).

Messages come from the outbox items ``process_reply`` (``store_inbound``) and
``process_link_klick`` (``store_click``), written in the same transaction as the reply or
click. Both do nothing for a row that is no longer ``neu``, so a second delivery of the
message is harmless.
"""

from __future__ import annotations

import dramatiq

from operations import replies
from workers import broker

broker.ensure()


@dramatiq.actor(queue_name="replies", max_retries=10, min_backoff=5_000, max_backoff=600_000)
def process_reply(inbound_id: int) -> str:
    """Process one inbound email reply; returns its status afterwards."""
    return replies.process_inbound(inbound_id)


@dramatiq.actor(queue_name="replies", max_retries=10, min_backoff=5_000, max_backoff=600_000)
def process_link_klick(klick_id: int) -> str:
    """Process one confirmed link click; returns its status afterwards."""
    return replies.process_click(klick_id)
