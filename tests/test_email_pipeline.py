"""Round -> outbox -> real Dramatiq worker processes on real Redis -> a real SMTP server.

Every bundle is emailed exactly once, also when every message is delivered twice,
when the worker is SIGKILLed in the middle of sending, and when Redis is flushed.
"""

from __future__ import annotations

import email
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from email import policy
from pathlib import Path

import factories as f
import pytest
from aiosmtpd.controller import Controller

from db.models import Email, OutboxItem, Therapeutenanfrage
from workers.emailing.tokens import parse_reply_address, read_link_token
from workers.operations.bundles import run_bundle_round

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


class Recorder:
    """An SMTP handler keeping every accepted message; it can hold one delivery at RCPT."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        self.hold_at = None  # hold the n-th RCPT (1-based) until released
        self.rcpts = 0
        self.held = threading.Event()
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpts += 1
            hold = self.rcpts == self.hold_at
        if hold:
            self.held.set()
            while not self.release.is_set():
                import asyncio

                await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted"

    def ids(self):
        with self.lock:
            return [m["Message-ID"] for m in self.messages]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    recorder.url = f"smtp://127.0.0.1:{port}"
    yield recorder
    recorder.release.set()
    controller.stop()


@pytest.fixture
def env(clean_db, cli_env, redis_url, smtp):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    values = {**cli_env, "REDIS_URL": redis_url, "SMTP_URL": smtp.url, "PSYMATCH_DEBUG": "1"}
    yield values
    redis.Redis.from_url(redis_url).flushdb()


class Worker:
    def __init__(self, env):
        self.env = env
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                str(BIN / "dramatiq"),
                "workers.actors",
                "--processes",
                "1",
                "--threads",
                "1",
                "--worker-shutdown-timeout",
                "2000",
            ],
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker(env):
    running = Worker(env)
    yield running
    running.stop()


def cli(env, *args):
    result = subprocess.run(
        [sys.executable, "-m", "psymatch.cli", "outbox", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_until(predicate, timeout=90, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


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
