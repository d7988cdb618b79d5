"""``psymatch bench webhooks --requests N``: inbound webhooks through a real gunicorn.

Starts gunicorn (2 workers, gthread, the web process's ``webhooks/gunicorn_conf.py``:
request metrics in multiprocess files, request ids) serving the production web app
against the configured database (``DATABASE_URL``) on a free loopback port. The app has
no routes of its own for benchmarks: the floor of the same server is ``GET /healthz``
(liveness, answered without the database or the broker). Then, from a pool of 16 client
threads with keep-alive connections:

0. untimed warm-up: 64 ``/healthz`` requests and 64 other deliveries (connections, pools,
   caches);
1. ``N`` valid signed Mailgun deliveries, each sent twice (shuffled, so duplicates
   also arrive concurrently), each answered 202 (new) or 200 (duplicate);
2. as many (``2N``) requests to ``/healthz``.

The processing actor does not run: the figures count stored rows. The run's rows
(InboundMessage, their outbox items and replay markers) are deleted afterwards.

Figures: ``requests`` (N), ``sent`` (2N), ``rps`` / ``p50_ms`` / ``p99_ms`` of the webhook
requests, ``bare_rps`` / ``bare_p50_ms`` of ``/healthz`` (the server's floor), ``stored``
(InboundMessage rows created), ``lost`` (messages without a row), ``duplicates`` (rows
beyond one per message), ``errors`` (responses other than 200/202, by status).
"""

from __future__ import annotations

import contextlib
import http.client
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from db import database
from psymatch import settings
from psymatch.ports import free_port

THREADS = 16
FLOOR = "/healthz"  # the floor: a production route that touches neither database nor broker
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 8


class BenchError(RuntimeError):
    pass


def bench_app():
    """The app gunicorn serves: the production ``create_app()`` (inbound routes included)."""
    from webhooks import inbound
    from webhooks.app import create_app

    app = create_app()
    inbound.register(app)
    return app


@contextlib.contextmanager
def _server(port: int, report):
    # the production gunicorn config (multiprocess metrics, logs), with its own metrics files
    metrics_dir = tempfile.mkdtemp(prefix="bench-metrics-")
    env = settings.child_environ(METRICS_DIR=metrics_dir)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(settings.PROJECT_ROOT / "webhooks" / "gunicorn_conf.py"),
        "--workers",
        str(GUNICORN_WORKERS),
        "--threads",
        str(GUNICORN_THREADS),
        "--worker-class",
        "gthread",
        "--keep-alive",
        "30",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "tools.bench_webhooks:bench_app()",
    ]
    process = subprocess.Popen(command, env=env, cwd=str(settings.PROJECT_ROOT))
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise BenchError(f"gunicorn exited with {process.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", FLOOR)
                if conn.getresponse().status == 200:
                    conn.close()
                    break
                conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("gunicorn did not answer within 60 s")
            time.sleep(0.1)
        if report:
            report(f"gunicorn up on port {port} ({GUNICORN_WORKERS} workers)")
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(metrics_dir, ignore_errors=True)


class _Client:
    """One keep-alive connection per client thread."""

    def __init__(self, port: int):
        self.port = port
        self.local = threading.local()

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, float]:
        for attempt in range(3):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=60
                )
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    self.local.conn = None
                return response.status, elapsed
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _mailgun_body(run_id: str, index: int) -> bytes:
    from webhooks.providers import mailgun_signature

    stamp = str(int(time.time()))
    token = secrets.token_hex(25)
    fields = {
        "timestamp": stamp,
        "token": token,
        "signature": mailgun_signature(stamp, token),
        "recipient": "antwort+a1.aaaaaaaaaaaaaaaa@" + settings.get().REPLY_DOMAIN,
        "sender": "praxis@bench.example",
        "from": "Praxis Bench <praxis@bench.example>",
        "subject": f"AW: Anfrage (bench {index})",
        "body-plain": "1) Patient 1: [x] ja  [ ] keine Kapazität  [ ] nicht geeignet\n",
        "Message-Id": f"<bench-{run_id}-{index}@bench.psymatch.example>",
        "message-headers": "[]",
    }
    return urlencode(fields).encode("utf-8")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _rows(run_id: str):
    from db.models import InboundMessage

    return InboundMessage.select().where(
        (InboundMessage.provider == "mailgun")
        & InboundMessage.message_key.startswith(f"mid:bench-{run_id}-")
    )


def _cleanup(run_id: str) -> int:
    from db.database import write_transaction
    from db.models import InboundMessage, OutboxItem, WebhookReplayMarker

    with write_transaction():
        ids = [row.id for row in _rows(run_id)]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            OutboxItem.delete().where(
                OutboxItem.dedupe_key.in_([f"process_reply:{i}" for i in chunk])
            ).execute()
            InboundMessage.delete().where(InboundMessage.id.in_(chunk)).execute()
        WebhookReplayMarker.delete().where(
            WebhookReplayMarker.message_key.startswith(f"mid:bench-{run_id}-")
        ).execute()
    return len(ids)


def run(requests: int, report=None) -> dict:
    """Run the benchmark with ``requests`` distinct deliveries (each sent twice)."""
    if requests < 1:
        raise BenchError("requests must be at least 1")
    if database.db.obj is None:
        database.init()
    run_id = uuid.uuid4().hex[:12]
    port = free_port()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    bodies = [_mailgun_body(run_id, i) for i in range(requests)]
    warm_id = uuid.uuid4().hex[:12]  # its own prefix: not counted with the run's rows
    warm_bodies = [_mailgun_body(warm_id, i) for i in range(THREADS * 4)]
    jobs = [i for i in range(requests) for _ in range(2)]
    random.Random(requests).shuffle(jobs)
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def count(status: int) -> None:
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    try:
        with _server(port, report):
            client = _Client(port)

            def webhook(index: int) -> float:
                status, elapsed = client.request(
                    "POST", "/webhooks/inbound/mailgun", bodies[index], headers
                )
                count(status)
                return elapsed

            def bare(_: int) -> float:
                status, elapsed = client.request("GET", FLOOR)
                if status != 200:
                    count(status)
                return elapsed

            def warm_up(index: int) -> None:  # connections, pools and caches of both paths
                client.request("GET", FLOOR)
                client.request("POST", "/webhooks/inbound/mailgun", warm_bodies[index], headers)

            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(warm_up, range(len(warm_bodies))))
                started = time.perf_counter()
                latencies = list(pool.map(webhook, jobs))
                webhook_s = time.perf_counter() - started
                # as many bare requests as webhook requests: the same work for the floor
                started = time.perf_counter()
                bare_latencies = list(pool.map(bare, range(len(jobs))))
                bare_s = time.perf_counter() - started
            if report:
                report(f"{len(jobs)} webhook requests in {webhook_s:.2f}s")
        with database.connection():
            rows = list(_rows(run_id).select(_rows(run_id).model.message_key).tuples())
            keys = {key for (key,) in rows}
            figures = {
                "requests": requests,
                "sent": len(jobs),
                "backend": database.dialect(),
                "rps": round(len(jobs) / webhook_s, 1),
                "p50_ms": round(statistics.median(latencies) * 1000, 2),
                "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
                "bare_rps": round(len(jobs) / bare_s, 1),
                "bare_p50_ms": round(statistics.median(bare_latencies) * 1000, 2),
                "stored": len(rows),
                "lost": requests - len(keys),
                "duplicates": len(rows) - len(keys),
                "accepted_202": statuses.get(202, 0),
                "duplicate_200": statuses.get(200, 0),
                "errors": {str(k): v for k, v in statuses.items() if k not in (200, 202)},
            }
    finally:
        with database.connection():
            _cleanup(run_id)
            _cleanup(warm_id)
    return figures
