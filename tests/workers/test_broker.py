"""The broker: stub for unit tests, real Redis for the outbox relay end to end."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from db.models import AuditLog, OutboxItem
from psymatch import settings
from workers import broker, embedded_redis, outbox


def test_without_redis_url_and_without_embedded_redis_the_error_says_what_to_do(tmp_path):
    previous = settings.get()
    settings.override(REDIS_URL="", VAR_DIR=str(tmp_path))
    try:
        assert embedded_redis.running_url() is None
        with pytest.raises(broker.BrokerUnavailable, match="start it with scripts/run"):
            broker.redis_url()
    finally:
        settings.override(REDIS_URL=previous.REDIS_URL, VAR_DIR=previous.VAR_DIR)


def test_build_broker_uses_redis_url():
    built = broker.build_broker("redis://127.0.0.1:6379/15")
    assert isinstance(built, RedisBroker)
    assert any(type(m).__name__ == "PeriodiqMiddleware" for m in built.middleware)


@pytest.fixture
def redis_broker(redis_url):
    """A RedisBroker on the real server (its own db index, flushed) with a worker."""
    real = broker.build_broker(redis_url)
    real.client.flushdb()
    real.add_middleware(broker.DatabaseMiddleware())
    previous = dramatiq.get_broker()
    dramatiq.set_broker(real)
    yield real
    dramatiq.set_broker(previous)
    real.client.flushdb()
    real.close()


def test_outbox_item_becomes_a_message_that_a_worker_runs_once(clean_db, redis_broker):
    @dramatiq.actor(broker=redis_broker, queue_name="test_outbox")
    def note_done(entity_id):
        AuditLog.create(actor="worker", action="done", entity="test", entity_id=str(entity_id))

    OutboxItem.create(task="note_done", payload={"entity_id": 42}, dedupe_key="note_done:42")
    OutboxItem.create(task="no_such_actor", payload={}, dedupe_key="missing:1")
    assert outbox.relay() == 1
    assert outbox.relay() == 0  # already enqueued: a second relay sends nothing

    worker = dramatiq.Worker(redis_broker, worker_timeout=100, worker_threads=1)
    worker.start()
    try:
        redis_broker.join("test_outbox", timeout=10_000)
    finally:
        worker.stop()

    clean_db.connect(reuse_if_open=True)
    assert [r.entity_id for r in AuditLog.select()] == ["42"]
    item = OutboxItem.get(OutboxItem.dedupe_key == "note_done:42")
    assert item.status == "eingereiht" and item.enqueued_at is not None
    unknown = OutboxItem.get(OutboxItem.dedupe_key == "missing:1")
    assert unknown.status == "offen" and "no actor named" in unknown.last_error
