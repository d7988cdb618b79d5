"""Round -> outbox -> real Dramatiq worker processes on real Redis -> a real SMTP server.

Every bundle is emailed exactly once, also when every message is delivered twice,
when the worker is SIGKILLed in the middle of sending, and when Redis is flushed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from db.models import Email, OutboxItem, Therapeutenanfrage
from operations.bundles import run_bundle_round
from psymatch.domain.tokens import parse_reply_address, read_link_token
from tests import factories as f
from tools.faults import environment
from tools.faults.environment import SmtpSink, Worker

pytestmark = pytest.mark.slow


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    yield sink
    sink.release.set()
    sink.stop()


@pytest.fixture
def env(clean_db, cli_env, redis_url, smtp):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    values = {**cli_env, "REDIS_URL": redis_url, "SMTP_URL": smtp.url, "PSYMATCH_DEBUG": "1"}
    yield values
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def worker(env):
    running = Worker(env)
    yield running
    running.stop()


def cli(env, *args):
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "outbox", *args, "--actor", "Erika"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_until(predicate, timeout=90, what="condition"):
    environment.wait_until(predicate, timeout, what, interval=0.2)


def sent_count():
    return Email.select().where(Email.status == "Gesendet").count()


def drive(env, expected, smtp):
    """Relay until every inquiry has been sent and the server holds the expected count."""

    def done():
        cli(env, "relay")
        return sent_count() >= expected and len(smtp.ids()) >= expected

    wait_until(done, what=f"{expected} emails")


def seed_round(therapists=5):
    for n in range(therapists):
        f.therapist(email=f"praxis{n}@example.org", vorname=f"T{n}")
    f.searches(12)
    created = run_bundle_round(f.NOW).created
    assert len(created) == therapists
    return created


def assert_exactly_once(smtp, anfrage_ids):
    ids = smtp.ids()
    assert len(ids) == len(set(ids)) == len(anfrage_ids), ids
    refs = set()
    for message in smtp.messages:
        ref = int(re.fullmatch(r"Suche Psychotherapieplätze - Ref: A(\d+)", message["Subject"])[1])
        refs.add(ref)
        assert parse_reply_address(message["Reply-To"]) == ref
        text = message.get_body(("plain",)).get_content()
        tokens = re.findall(r"/r/([A-Za-z0-9_.=-]+)", text)
        assert tokens and {read_link_token(t, f.NOW).anfrage_id for t in tokens} == {ref}
    assert refs == set(anfrage_ids)
    anfragen = Therapeutenanfrage.select().where(Therapeutenanfrage.id.in_(anfrage_ids))
    assert all(a.gesendet_datum and a.email_id for a in anfragen)


def test_every_bundle_is_emailed_once_even_when_every_message_comes_twice(env, worker, smtp):
    anfragen = seed_round()
    worker.start()
    drive(env, len(anfragen), smtp)
    OutboxItem.update(status="offen").execute()  # deliver every message a second time
    cli(env, "relay")
    wait_until(
        lambda: OutboxItem.select().where(OutboxItem.status != "erledigt").count() == 0,
        what="the duplicates to be processed",
    )
    assert_exactly_once(smtp, anfragen)
    assert Email.select().count() == len(anfragen)


def test_sigkill_in_the_middle_of_sending_then_restart(env, worker, smtp):
    anfragen = seed_round()
    smtp.hold_at = 3
    worker.start()
    cli(env, "relay")
    wait_until(
        lambda: Email.select().count() == len(anfragen) or smtp.held.is_set(), what="emails queued"
    )
    cli(env, "relay")  # the send_email items
    wait_until(smtp.held.is_set, what="the third delivery to start")
    worker.kill()  # mid-conversation: the server never said 250 for the third email
    smtp.release.set()
    assert len(smtp.ids()) == 2 and sent_count() == 2
    # the held email, and any claimed with it in its batch, wait in Wird_gesendet
    assert Email.select().where(Email.status == "Wird_gesendet").count() >= 1
    worker.start()
    cli(env, "reconcile", "--stale-after-seconds", "0")
    drive(env, len(anfragen), smtp)
    assert_exactly_once(smtp, anfragen)


def test_flushed_redis_then_reconcile(env, worker, smtp, redis_url):
    import redis

    anfragen = seed_round()
    cli(env, "relay")  # messages enqueued ...
    redis.Redis.from_url(redis_url).flushdb()  # ... and lost before any worker ran
    worker.start()
    time.sleep(2)
    assert smtp.ids() == [] and sent_count() == 0
    cli(env, "reconcile", "--stale-after-seconds", "0")
    drive(env, len(anfragen), smtp)
    assert_exactly_once(smtp, anfragen)
