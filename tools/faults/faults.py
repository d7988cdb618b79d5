"""One function per fault, and ``run_suite``.

Every fault starts from an empty scratch database and an empty Redis, runs the flow of
``scenario`` and injects its fault where work is really in flight: a worker transaction
stopped at a known statement by a lock another session holds, or the SMTP server holding
the n-th delivery. Then it recovers as production does (restart the worker, reconcile
the outbox, relay), waits until nothing is left to do, and counts (``checks``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from db import database
from db.models import AuditLog, Therapist
from psymatch import settings

from . import checks, scenario
from .environment import (
    BIN,
    Blocker,
    Controller,
    DbProxy,
    FaultError,
    RedisServer,
    SmtpSink,
    WebhookServer,
    Worker,
    create_scratch_database,
    empty_tables,
    own_backend_pid,
    scratch_url,
    terminate_backends,
    wait_until,
)

FAULTS = (
    "worker_killed_during_round",
    "worker_killed_during_sending",
    "worker_killed_during_reply_processing",
    "redis_flushed_mid_flow",
    "redis_restarted_mid_flow",
    "postgres_backends_terminated",
    "smtp_down_then_back",
    "webhook_while_database_down",
)
THERAPISTS_TABLE = Therapist._meta.table_name
AUDIT_TABLE = AuditLog._meta.table_name
WAIT_S = 60  # the longest any step may take before the fault counts as not recovered
RELAY_EVERY_S = 0.2


class Run:
    """One fault's run: its worker, relay controller and Redis; the flow's steps."""

    def __init__(self, suite: Suite, name: str, redis_url: str, controller: Controller):
        self.suite, self.name, self.redis_url, self.controller = suite, name, redis_url, controller
        self.env = {**suite.env, "REDIS_URL": redis_url}
        self.worker = Worker(self.env, log=suite.logs / f"{name}.worker.log")
        self.sink = suite.sink
        self.replies: list[tuple[str, bytes]] = []
        self.notes: list[str] = []

    # steps of the flow
    def begin(self, auto: bool = True, worker: bool = True) -> None:
        scenario.seed()
        scenario.queue_round()
        if auto:
            self.auto()
        if worker:
            self.worker.start()

    def auto(self) -> None:
        self.controller.call(f"auto {RELAY_EVERY_S}")

    def manual(self) -> None:
        self.controller.call("manual")

    def relay(self) -> int:
        return self.controller.call("relay")["enqueued"]

    def await_round(self) -> None:
        wait_until(scenario.round_done, WAIT_S, "the bundle round")
        if scenario.anfragen() != scenario.THERAPISTS:
            raise FaultError(
                f"the round created {scenario.anfragen()} Anfragen, not {scenario.THERAPISTS}"
            )

    def await_emails(self) -> None:
        def done():
            sent = sum(len(m) for m in scenario.inquiries(self.sink).values())
            return sent >= scenario.THERAPISTS and (
                scenario.emails_marked_sent() == scenario.emails_created() == scenario.THERAPISTS
            )

        wait_until(done, WAIT_S, f"{scenario.THERAPISTS} inquiry emails")

    def prepare_replies(self) -> list[tuple[str, bytes]]:
        self.replies = scenario.replies_for(self.sink)
        return self.replies

    def deliver_replies(self) -> None:
        statuses = scenario.deliver(self.suite.webhook.url, self.replies or self.prepare_replies())
        if any(s not in (200, 202, 503) for s in statuses):
            raise FaultError(f"unexpected webhook answers {sorted(set(statuses))}")

    def await_replies(self) -> None:
        wait_until(
            lambda: scenario.replies_processed() >= len(self.replies),
            WAIT_S,
            f"{len(self.replies)} replies to be processed",
        )

    def recover(self, restart_worker: bool = False) -> dict:
        """Production's recovery: reconcile the outbox (everything enqueued but not done
        goes back), restart a dead worker; the relay loop does the rest."""
        for attempt in range(1, 6):  # like the clock: a failed run is simply run again
            try:
                counts = self.controller.call("reconcile")
                break
            except FaultError as error:
                if attempt == 5:
                    raise
                self.note(f"reconcile attempt {attempt} failed ({str(error).splitlines()[0]})")
        if restart_worker:
            self.worker.start()
        self.auto()
        return counts

    def settle(self) -> None:
        def quiet():
            return (
                scenario.outbox_open() == 0
                and scenario.emails_marked_sent() == scenario.emails_created()
                and scenario.replies_processed() >= len(self.replies)
            )

        wait_until(quiet, WAIT_S, "all work to be done (outbox, emails, replies)")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def blocker(self) -> Blocker:
        return Blocker(self.suite.database_url)

    def therapist_of(self, position: int) -> int:
        """The therapist of the ``position``-th Anfrage (1-based, id order)."""
        from db.models import Therapeutenanfrage

        row = (
            Therapeutenanfrage.select(Therapeutenanfrage.therapist)
            .order_by(Therapeutenanfrage.id)
            .offset(position - 1)
            .limit(1)
            .tuples()
            .first()
        )
        return row[0]

    def reply_therapist(self, position: int) -> int:
        """The therapist whose reply is the ``position``-th (1-based) of ``self.replies``."""
        from db.models import Therapeutenanfrage

        key = self.replies[position - 1][0]
        anfrage_id = int(key.split("-a", 1)[1].split("@", 1)[0])
        return Therapeutenanfrage.get_by_id(anfrage_id).therapist_id


# --- the faults ------------------------------------------------------------------------------


def worker_killed_during_round(run: Run) -> None:
    blocker = run.blocker().lock_table(AUDIT_TABLE)  # the round writes its audit rows last
    run.begin()
    statement = blocker.wait_blocked("the round, after its Anfragen, lines and outbox rows")
    run.worker.kill()
    run.note(f"SIGKILL while the round waited in: {statement.split('(')[0].strip()[:40]}")
    blocker.release()
    run.note(f"Anfragen committed by the killed round: {scenario.anfragen()}")
    run.recover(restart_worker=True)
    run.await_round()
    run.await_emails()
    run.deliver_replies()
    run.await_replies()


def worker_killed_during_sending(run: Run) -> None:
    run.begin()
    run.await_round()
    run.sink.hold_at = scenario.THERAPISTS // 2
    wait_until(run.sink.held.is_set, WAIT_S, "the SMTP server to hold a delivery")
    run.worker.kill()  # mid-conversation: the server never said 250 for the held email
    run.sink.release.set()
    stuck = scenario.emails_created() - scenario.emails_marked_sent()
    run.note(f"SIGKILL with {len(run.sink.received())} emails accepted, {stuck} not sent")
    run.recover(restart_worker=True)
    run.await_emails()
    run.deliver_replies()
    run.await_replies()


def worker_killed_during_reply_processing(run: Run) -> None:
    run.begin()
    run.await_round()
    run.await_emails()
    run.prepare_replies()
    position = len(run.replies) // 2
    blocker = run.blocker().lock_row(THERAPISTS_TABLE, run.reply_therapist(position))
    run.deliver_replies()
    statement = blocker.wait_blocked("a reply's record_response")
    run.worker.kill()
    run.note(
        f"SIGKILL with {scenario.replies_processed()} of {len(run.replies)} replies processed, "
        f"one waiting in: {statement.split('SET')[0].strip()[:40]}"
    )
    blocker.release()
    run.recover(restart_worker=True)
    run.await_replies()


def _block_sending_at(run: Run, position: int) -> Blocker:
    """Round first with the relay paused, then the send_anfrage of the ``position``-th
    Anfrage waits on a lock of its therapist (its Email insert), the later ones queue."""
    run.begin(auto=False)
    run.relay()
    run.await_round()
    blocker = run.blocker().lock_row(THERAPISTS_TABLE, run.therapist_of(position))
    run.auto()
    blocker.wait_blocked(f"send_anfrage of Anfrage {position}")
    return blocker


def redis_flushed_mid_flow(run: Run) -> None:
    import redis

    blocker = _block_sending_at(run, scenario.THERAPISTS // 2)
    queued = redis.Redis.from_url(run.redis_url).dbsize()
    redis.Redis.from_url(run.redis_url).flushdb()
    run.note(f"FLUSHDB with {scenario.emails_created()} emails created, {queued} keys in Redis")
    blocker.release()
    run.recover()
    run.await_emails()
    run.deliver_replies()
    run.await_replies()


def redis_restarted_mid_flow(run: Run) -> None:
    run.begin()
    run.await_round()
    run.await_emails()
    run.prepare_replies()
    blocker = run.blocker().lock_row(THERAPISTS_TABLE, run.reply_therapist(len(run.replies) // 2))
    run.deliver_replies()
    blocker.wait_blocked("a reply's record_response")
    run.suite.private_redis.restart()
    run.note(
        f"redis-server restarted (no persistence) with {scenario.replies_processed()} of "
        f"{len(run.replies)} replies processed"
    )
    blocker.release()
    run.recover()
    run.await_replies()


def postgres_backends_terminated(run: Run) -> None:
    blocker = _block_sending_at(run, scenario.THERAPISTS // 2)
    created = scenario.emails_created()
    count = terminate_backends(run.suite.database_url, {blocker.pid(), own_backend_pid()})
    run.note(
        f"pg_terminate_backend on {count} sessions (worker mid-transaction, relay, web) "
        f"with {created} emails created"
    )
    blocker.release()
    run.recover()
    run.await_emails()
    run.deliver_replies()
    run.await_replies()


def smtp_down_then_back(run: Run) -> None:
    from db.models import Email

    run.begin()
    run.await_round()
    run.sink.hold_at = scenario.THERAPISTS // 3
    wait_until(run.sink.held.is_set, WAIT_S, "the SMTP server to hold a delivery")
    accepted = len(run.sink.received())
    run.sink.stop()  # the server goes away in the middle of the batch
    wait_until(
        lambda: (
            Email.select().where(Email.status == "Wird_gesendet").count() == 0
            and Email.select().where(Email.wiederholungsanzahl > 0).count() > 0
        ),
        WAIT_S,
        "the worker to put the unsent emails back after the server went away",
    )
    failed = Email.select().where(Email.wiederholungsanzahl > 0).count()
    run.note(f"SMTP server stopped after {accepted} emails; {failed} got a temporary error")
    run.sink.hold_at = None
    run.sink.start()
    run.recover()
    run.await_emails()
    run.deliver_replies()
    run.await_replies()


def webhook_while_database_down(run: Run) -> None:
    from db.models import InboundMessage

    run.begin()
    run.await_round()
    run.await_emails()
    replies = run.prepare_replies()
    run.suite.proxy.stop()  # the web app's database is unreachable
    down = [scenario.post_reply(run.suite.webhook.url, body) for _, body in replies]
    stored = InboundMessage.select().count()
    if set(down) != {503} or stored:
        raise FaultError(f"with the database down: answers {sorted(set(down))}, {stored} stored")
    run.suite.proxy.start()
    statuses = scenario.deliver(run.suite.webhook.url, replies)  # the provider's retries
    again = scenario.deliver(run.suite.webhook.url, replies)  # and a second delivery of each
    run.note(
        f"{len(down)} x 503 while down; then {statuses.count(202)} x 202 "
        f"({statuses.count(503)} more 503 on stale connections); repeats: {again.count(200)} x 200"
    )
    run.await_replies()


# --- the suite -------------------------------------------------------------------------------


class Suite:
    """The parts every fault shares: scratch database, SMTP server, proxy, webhook server,
    relay controller on the configured Redis, and a private redis-server."""

    def __init__(self, database_url: str, redis_url: str, report=None):
        self.configured_url = database_url
        self.database_url = scratch_url(database_url)
        self.redis_url = redis_url
        self.report = report or (lambda _: None)
        self.logs = Path(tempfile.mkdtemp(prefix="psymatch-faults-"))
        self.parts: list = []

    def __enter__(self) -> Suite:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        import redis

        if not self.redis_url:
            raise FaultError("the fault suite needs REDIS_URL (a Redis server)")
        redis.Redis.from_url(self.redis_url, socket_connect_timeout=2).ping()
        self.report(f"scratch database {urlparse(self.database_url).path.lstrip('/')}")
        create_scratch_database(self.database_url)
        self.sink = self._part(SmtpSink().start())
        parsed = urlparse(self.database_url)
        self.proxy = self._part(DbProxy(parsed.hostname or "127.0.0.1", parsed.port or 5432))
        self.proxy.start()
        netloc = parsed.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.proxy.port}"
        proxied = urlunparse(
            parsed._replace(
                netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host,
                query="connect_timeout=2",
            )
        )
        self.env = settings.child_environ(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            SMTP_URL=self.sink.url,
            SMTP_TIMEOUT_S="5",
            PATH=f"{BIN}:{os.environ.get('PATH', '')}",
        )
        self.webhook = self._part(
            WebhookServer({**self.env, "DATABASE_URL": proxied}, log=self.logs / "web.log")
        ).start()
        self.controller = self._part(Controller(self.env, log=self.logs / "controller.log"))
        self.controller.start()
        self.private_redis = None

    def _part(self, part):
        self.parts.append(part)
        return part

    def __exit__(self, *exc) -> None:
        for part in reversed(self.parts):
            with contextlib.suppress(Exception):  # stopping the rest matters more
                part.kill() if isinstance(part, RedisServer) else part.stop()
        database.release(database.db.obj)
        if exc[0] is None:  # the logs only matter when something went wrong
            shutil.rmtree(self.logs, ignore_errors=True)

    def _fresh(self) -> None:
        import redis

        database.init(self.database_url)
        empty_tables()
        redis.Redis.from_url(self.redis_url).flushdb()
        self.sink.reset()
        if not self.sink.running:
            self.sink.start()
        if self.proxy.listener is None:
            self.proxy.start()

    def run(self, name: str) -> dict:
        if name not in FAULTS:
            raise FaultError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
        self._fresh()
        controller = self.controller
        redis_url = self.redis_url
        if name == "redis_restarted_mid_flow":
            self.private_redis = self._part(RedisServer()).start()
            redis_url = self.private_redis.url
            controller = self._part(
                Controller({**self.env, "REDIS_URL": redis_url}, log=self.logs / f"{name}.ctl")
            ).start()
        run = Run(self, name, redis_url, controller)
        started = time.monotonic()
        try:
            globals()[name](run)
            run.settle()
        except FaultError as error:
            raise FaultError(f"{name}: {error} (logs: {self.logs})") from error
        finally:
            run.controller.call("manual")
            run.worker.stop()
            if controller is not self.controller:
                controller.stop()
                self.private_redis.kill()
        result = checks.row(name, self.sink, scenario.THERAPISTS, [k for k, _ in run.replies])
        result["seconds"] = round(time.monotonic() - started, 1)
        result["injected"] = "; ".join(run.notes)
        self.report(
            f"{name}: {result['emails_sent']}/{result['emails_expected']} emails, "
            f"{result['replies_recorded']}/{result['replies_expected']} replies, "
            f"lost {result['lost']}, duplicated {result['duplicated']} ({result['seconds']} s)"
        )
        return result


def run_suite(
    database_url: str | None = None,
    redis_url: str | None = None,
    only: list[str] | None = None,
    report=None,
) -> dict:
    """Every fault (or ``only`` those) against PostgreSQL, Redis and a local SMTP server."""
    s = settings.get()
    names = list(only or FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise FaultError(f"unknown fault {unknown[0]!r} (known: {', '.join(FAULTS)})")
    started = time.monotonic()
    with Suite(database_url or s.DATABASE_URL, redis_url or s.REDIS_URL, report) as suite:
        rows = [suite.run(name) for name in names]
    return {
        "faults": rows,
        "passed": all(checks.passed(r) for r in rows),
        "seconds": round(time.monotonic() - started, 1),
    }


def table(result: dict) -> str:
    """The result as a readable table."""
    header = ("fault", "emails exp", "sent", "replies exp", "recorded", "lost", "dup", "half")
    rows = [
        (
            r["fault"],
            r["emails_expected"],
            r["emails_sent"],
            r["replies_expected"],
            r["replies_recorded"],
            r["lost"],
            r["duplicated"],
            r["half_written"],
        )
        for r in result["faults"]
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    lines.append("")
    lines += [f"{r['fault']}: {r['injected']} ({r['seconds']} s)" for r in result["faults"]]
    verdict = "PASSED" if result["passed"] else "FAILED"
    lines.append(f"{verdict}: {len(rows)} faults in {result['seconds']} s")
    return "\n".join(lines)
