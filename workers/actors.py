"""Entry point for ``dramatiq`` and ``periodiq``: the broker, then every actor module.

``dramatiq workers.actors`` runs them; ``periodiq workers.actors`` schedules the
periodic ones (exactly one clock process).
"""

from psymatch import settings
from workers import broker

settings.require_secrets()  # outside demo mode: refuse demo or missing secrets
broker.ensure()

from workers import (  # noqa: E402,F401
    bundle_actors,
    communication_actors,
    expiry_actors,
    outbox,
    privacy_actors,
)
from workers import email_actors as emailing_actors  # noqa: E402,F401
from workers import geocoding_actors as geocoding_actors  # noqa: E402,F401
from workers import reply_actors as replies_actors  # noqa: E402,F401
