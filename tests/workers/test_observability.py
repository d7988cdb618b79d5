"""Observability: /metrics (web, domain, worker), /readyz, structured logs with ids."""

from __future__ import annotations

import datetime as dt
import http.client
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dramatiq
import pytest
from prometheus_client.parser import text_string_to_metric_families

from db import database
from db.models import (
    Email,
    InboundMessage,
    OutboxItem,
    Telefonanruf,
    TherapeutAnfragePatient,
    utcnow,
)
from operations.bundles import create_anfrage
from operations.snapshot import local_today
from psymatch import logs, settings
from psymatch.metric_files import pid_of, remove_dead_process_files
from psymatch.ports import free_port
from tests import factories as f
from tests import webhook_payloads as wp
from webhooks import observability
from webhooks.app import create_app

ROOT = settings.PROJECT_ROOT
BIN = Path(sys.executable).parent
MAILGUN = "/webhooks/inbound/mailgun"


def samples(text: str) -> dict[tuple, float]:
    """``{(sample name, sorted labels): value}`` of an exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def app(clean_db):
    yield create_app({"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis_at():
    previous = settings.get().REDIS_URL
    yield lambda url: settings.override(REDIS_URL=url)
    settings.override(REDIS_URL=previous)


# --- web metrics ---------------------------------------------------------------------------


def test_metrics_count_requests_latency_and_rejections_by_reason(client, migrated):
    before = samples(client.get("/metrics").get_data(as_text=True))
    good = wp.mailgun()
    assert client.post(MAILGUN, data=good).status_code == 202
    assert client.post(MAILGUN, data={**good, "signature": "0" * 64}).status_code == 401
    stale = wp.mailgun(timestamp=int(time.time()) - 3600)
    assert client.post(MAILGUN, data=stale).status_code == 406
    replay = wp.mailgun(text="anders", timestamp=good["timestamp"], token=good["token"])
    assert client.post(MAILGUN, data=replay).status_code == 406
    assert client.post(MAILGUN, data="x", content_type="text/plain").status_code == 415
    database.init("postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=1")
    try:
        assert client.post(MAILGUN, data=wp.mailgun()).status_code == 503
    finally:
        database.init(migrated)
    after = samples(client.get("/metrics").get_data(as_text=True))

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"route": MAILGUN, "method": "POST"}
    assert delta("psymatch_http_requests_total", **route, status="202") == 1
    assert delta("psymatch_http_requests_total", **route, status="401") == 1
    assert delta("psymatch_http_requests_total", **route, status="406") == 2
    assert delta("psymatch_http_request_duration_seconds_count", route=MAILGUN) == 6
    for reason, count in [
        ("forged_signature", 1),
        ("stale", 1),
        ("replayed", 1),
        ("wrong_content_type", 1),
        ("database_down", 1),
        ("malformed", 0),
    ]:
        assert delta("psymatch_webhook_rejections_total", reason=reason) == count, reason
    # the first scrape is itself counted by the second
    assert delta("psymatch_http_requests_total", route="/metrics", method="GET", status="200") == 1


@pytest.mark.parametrize(
    "status,code,reason",
    [
        (401, "signature_invalid", "forged_signature"),
        (401, "unauthorized", "forged_signature"),
        (406, "timestamp_stale", "stale"),
        (406, None, "stale"),  # an expired link page
        (406, "token_reused", "replayed"),
        (400, "malformed", "malformed"),
        (413, "too_large", "oversize"),
        (415, "unsupported_media_type", "wrong_content_type"),
        (404, None, "unknown_token"),
        (503, "database_unavailable", "database_down"),
        (202, None, None),
        (405, None, None),
    ],
)
def test_rejection_reasons(status, code, reason):
    assert observability.rejection_reason(status, code) == reason
    assert reason is None or reason in observability.REJECTION_REASONS


def test_oversize_and_unknown_link_are_counted(client):
    settings.override(WEBHOOK_MAX_BYTES=100)
    try:
        before = samples(client.get("/metrics").get_data(as_text=True))
        assert client.post(MAILGUN, data={"x": "y" * 500}).status_code == 413
    finally:
        settings.override(WEBHOOK_MAX_BYTES=10 * 1024 * 1024)
    from psymatch.domain import tokens

    link = tokens.make_link_token(999_999, 1, "angenommen")
    assert client.get(f"/r/{link}").status_code == 404
    after = samples(client.get("/metrics").get_data(as_text=True))
    for reason in ("oversize", "unknown_token"):
        name = "psymatch_webhook_rejections_total"
        assert value(after, name, reason=reason) - value(before, name, reason=reason) == 1


def test_metrics_token_is_required_when_set(client):
    settings.override(METRICS_TOKEN="s3cret-metrics-token")
    try:
        assert client.get("/metrics").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.get("/metrics", headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret-metrics-token"}
        response = client.get("/metrics", headers=right)
        assert response.status_code == 200
        assert b"psymatch_domain_up 1.0" in response.data
    finally:
        settings.override(METRICS_TOKEN="")


# --- domain gauges -------------------------------------------------------------------------


def _seed_domain_rows():
    """2 Anfragen (one unsent, one sent) sharing 3 patients; one patient accepted by both."""
    first_therapist, second_therapist = f.therapist(), f.therapist()
    f.searches(3)
    first = create_anfrage(first_therapist.id, now=f.NOW)
    second = create_anfrage(second_therapist.id, now=f.NOW)
    f.mark_sent(second.anfrage_id, f.NOW)
    patient = first.selection.patients[0].patient_id
    TherapeutAnfragePatient.update(antwortergebnis="angenommen").where(
        TherapeutAnfragePatient.patient == patient
    ).execute()
    today = local_today(utcnow())
    for day, status in [
        (today, "geplant"),
        (today - dt.timedelta(days=2), "geplant"),
        (today + dt.timedelta(days=1), "geplant"),
        (today, "abgeschlossen"),
    ]:
        Telefonanruf.create(
            therapist=first_therapist,
            geplantes_datum=day,
            geplante_zeit="10:00",
            dauer_minuten=5,
            status=status,
        )
    for number, status in enumerate(["pruefung", "pruefung", "verarbeitet"]):
        InboundMessage.create(
            provider="raw", message_key=f"mid:obs-{number}", raw_payload="x", status=status
        )
    for number, status in enumerate(["In_Warteschlange", "Fehlgeschlagen", "Fehlgeschlagen"]):
        Email.create(
            therapist=first_therapist,
            art="anfrage",
            idempotenz_schluessel=f"obs:{number}",
            betreff="Anfrage",
            empfaenger_email="praxis@example.org",
            absender_email="anfragen@psymatch.example",
            status=status,
        )


def test_domain_gauges_reflect_seeded_rows(client):
    _seed_domain_rows()
    outbox = {s: OutboxItem.select().where(OutboxItem.status == s).count() for s in ("offen",)}
    found = samples(client.get("/metrics").get_data(as_text=True))
    assert value(found, "psymatch_domain_up") == 1
    assert value(found, "psymatch_bundles_created") == 2
    assert value(found, "psymatch_bundles", status="ungesendet") == 1
    assert value(found, "psymatch_bundles", status="gesendet") == 1
    assert value(found, "psymatch_bundles", status="beantwortet") == 0
    assert value(found, "psymatch_replies_in_review") == 2
    assert value(found, "psymatch_conflicts") == 1
    assert value(found, "psymatch_calls_due_today") == 2  # today and overdue, planned only
    assert value(found, "psymatch_emails", status="In_Warteschlange") == 1
    assert value(found, "psymatch_emails", status="Fehlgeschlagen") == 2
    assert value(found, "psymatch_emails", status="Gesendet") == 0
    assert value(found, "psymatch_outbox_items", status="offen") == outbox["offen"]


def test_domain_gauges_report_a_database_outage(client, migrated):
    database.init("postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=1")
    try:
        response = client.get("/metrics")
    finally:
        database.init(migrated)
    assert response.status_code == 200
    found = samples(response.get_data(as_text=True))
    assert value(found, "psymatch_domain_up") == 0
    assert ("psymatch_replies_in_review", ()) not in found


# --- /readyz -------------------------------------------------------------------------------


def test_readyz_ok(client, redis_url, redis_at):
    redis_at(redis_url)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"database": "ok", "broker": "ok"}


def test_readyz_database_down_is_503(client, redis_url, redis_at, migrated):
    redis_at(redis_url)
    database.init("postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=1")
    try:
        response = client.get("/readyz")
    finally:
        database.init(migrated)
    assert response.status_code == 503
    body = response.get_json()
    assert body == {"database": "unavailable", "broker": "ok"}  # open: no error texts


def test_readyz_redis_down_is_503(client, redis_at):
    redis_at("redis://127.0.0.1:1/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body == {"database": "ok", "broker": "unavailable"}


# --- logs ----------------------------------------------------------------------------------


@pytest.fixture
def json_lines():
    """Collect what the root logger writes, formatted as LOG_FORMAT=json would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous)


def test_json_log_line_carries_the_request_id_of_the_response_header(app, json_lines):
    app.add_url_rule(
        "/test/log", "test_log", lambda: (logging.getLogger("obs").info("Anfrage 42") or "", 204)
    )
    client = app.test_client()
    given = client.get("/test/log", headers={"X-Request-ID": "req-abc.123"})
    generated = client.get("/test/log")
    bad = client.get("/test/log", headers={"X-Request-ID": "no spaces <allowed>"})
    lines = [line for line in json_lines() if line["logger"] == "obs"]
    assert [line["request_id"] for line in lines] == [
        "req-abc.123",
        generated.headers["X-Request-ID"],
        bad.headers["X-Request-ID"],
    ]
    assert given.headers["X-Request-ID"] == "req-abc.123"
    assert len(generated.headers["X-Request-ID"]) == 32
    assert bad.headers["X-Request-ID"] != "no spaces <allowed>"
    line = lines[0]
    assert set(line) >= {"time", "level", "logger", "message", "request_id", "message_id"}
    assert line["message"] == "Anfrage 42" and line["level"] == "INFO"
    assert line["message_id"] is None
    assert logs.request_id.get() is None  # nothing leaks past the request


def test_actor_logs_its_message_id_on_a_real_worker(json_lines, stub_broker, stub_worker):
    @dramatiq.actor(broker=stub_broker, queue_name="obs_log_test", max_retries=0)
    def obs_log_actor(number):
        logging.getLogger("obs.actor").info("processed %d", number)

    message = obs_log_actor.send(7)
    stub_broker.join("obs_log_test", fail_fast=True)
    stub_worker.join()
    lines = [line for line in json_lines() if line["logger"] == "obs.actor"]
    assert len(lines) == 1
    assert lines[0]["message"] == "processed 7"
    assert lines[0]["message_id"] == message.message_id
    assert lines[0]["request_id"] is None


def test_setup_writes_one_json_object_per_line(tmp_path):
    code = (
        "import logging\n"
        "from psymatch import logs\n"
        "logs.setup()\n"
        "logs.request_id.set('r-1')\n"
        "logging.getLogger('x').info('eins')\n"
        "try:\n    1/0\nexcept ZeroDivisionError:\n    logging.getLogger('x').exception('zwei')\n"
    )
    env = {**os.environ, "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["message"], line["request_id"]) for line in lines] == [
        ("eins", "r-1"),
        ("zwei", "r-1"),
    ]
    assert "ZeroDivisionError" in lines[1]["exc_info"]
    text = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "LOG_FORMAT": "text"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert text.stderr.splitlines()[0].endswith("x: eins request_id=r-1")


@pytest.mark.parametrize(
    "environ,message",
    [
        ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT must be text or json"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of"),
        ({"WORKER_METRICS_PORT": "70000"}, "WORKER_METRICS_PORT must be between"),
    ],
)
def test_bad_observability_settings_are_named(tmp_path, environ, message):
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(environ=environ, env_file=tmp_path / "none")


# --- multiprocess metric files -------------------------------------------------------------


def test_dead_process_files_are_removed(tmp_path):
    alive = tmp_path / f"counter_{os.getpid()}.db"
    dead_pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dead = tmp_path / f"histogram_{dead_pid}.db"
    other = tmp_path / "notes.txt"
    for path in (alive, dead, other):
        path.write_bytes(b"x")
    assert pid_of(dead) == int(dead_pid) and pid_of(other) is None
    assert remove_dead_process_files(tmp_path) == 1
    assert alive.exists() and other.exists() and not dead.exists()


# --- real processes: gunicorn with 2 workers, a dramatiq pool with 2 processes -------------


def _get(port: int, path: str, headers=None) -> tuple[int, str, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        conn.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_gunicorn_workers_share_their_metrics(cli_env, redis_url, tmp_path):
    port = free_port()
    env = {
        **cli_env,
        "REDIS_URL": redis_url,
        "METRICS_DIR": str(tmp_path / "metrics"),
        "LOG_FORMAT": "json",
    }
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "-c",
                "webhooks/gunicorn_conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "webhooks.app:create_app()",
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: _try_get(port, "/readyz") == 200, 60, "gunicorn")
        for _ in range(40):  # spread over both workers by the kernel
            assert _get(port, "/readyz")[0] == 200
        status, _, headers = _get(port, "/readyz", {"X-Request-ID": "gunicorn-req-1"})
        assert headers["X-Request-ID"] == "gunicorn-req-1"
        pids = {
            int(path.name.rpartition("_")[2][:-3])
            for path in (tmp_path / "metrics" / "web").glob("counter_*.db")
        }
        assert len(pids) >= 1
        found = {}
        for _ in range(4):  # whichever worker answers, it reports the sum of both
            status, text, _ = _get(port, "/metrics")
            assert status == 200
            found = samples(text)
            ready = value(
                found, "psymatch_http_requests_total", route="/readyz", method="GET", status="200"
            )
            assert ready == 42  # the first probe, 40, and the one with the request id
        domain = [key for key in found if key[0] == "psymatch_replies_in_review"]
        assert len(domain) == 1  # the domain gauges once, not per worker
    finally:
        _stop(process)
    access = [
        json.loads(line)
        for line in log.read_text().splitlines()
        if line.startswith("{") and '"gunicorn.access"' in line
    ]
    tagged = [line for line in access if line["request_id"] == "gunicorn-req-1"]
    assert len(tagged) == 1 and "request_id=gunicorn-req-1" in tagged[0]["message"]


def _try_get(port: int, path: str) -> int | None:
    try:
        return _get(port, path)[0]
    except OSError:
        return None


@pytest.mark.slow
def test_worker_pool_exposes_dramatiq_metrics(cli_env, redis_url, tmp_path):
    import redis

    port = free_port()
    env = {
        **cli_env,
        "REDIS_URL": redis_url,
        "WORKER_METRICS_PORT": str(port),
        "LOG_FORMAT": "json",
    }
    client = redis.Redis.from_url(redis_url)
    client.delete("dramatiq:obs_test", "dramatiq:obs_test.DQ", "dramatiq:obs_test.XQ")
    log = tmp_path / "dramatiq.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(BIN / "dramatiq"),
                "obs_worker_app",
                "--path",
                ".",
                "tests",
                "--processes",
                "2",
                "--threads",
                "1",
                "--queues",
                "obs_test",
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: _try_get(port, "/metrics") == 200, 90, "worker metrics server")
        sent = [_enqueue(client, number) for number in range(3)]

        def processed():
            found = samples(_get(port, "/metrics")[1])
            labels = {"queue_name": "obs_test", "actor_name": "obs_ping"}
            return value(found, "dramatiq_messages_total", **labels) == 3 and found

        found = wait_for(processed, 60, "3 processed messages in the worker metrics")
        labels = {"queue_name": "obs_test", "actor_name": "obs_ping"}
        assert value(found, "dramatiq_message_errors_total", **labels) == 0
        assert value(found, "dramatiq_message_duration_milliseconds_count", **labels) == 3
    finally:
        _stop(process)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    pings = {line["message_id"] for line in lines if line["logger"] == "obs_test"}
    assert pings == set(sent)  # each message's own id in its log line
    assert (Path(settings.get().VAR_DIR) / "prometheus" / "worker").is_dir()


def _enqueue(client, number: int) -> str:
    """Put an ``obs_ping`` message on the queue the way Dramatiq's RedisBroker does."""
    message = dramatiq.Message(
        queue_name="obs_test", actor_name="obs_ping", args=(number,), kwargs={}, options={}
    )
    from dramatiq.brokers.redis import RedisBroker

    RedisBroker(client=client, middleware=[]).enqueue(message)
    return message.message_id


def test_worker_metrics_port_in_use_is_not_fatal():
    from workers.observability import serve_worker_metrics

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        previous = settings.get()
        settings.override(
            WORKER_METRICS_HOST="127.0.0.1", WORKER_METRICS_PORT=holder.getsockname()[1]
        )
        try:
            assert serve_worker_metrics(retry_s=0.01, attempts=3) == 0
        finally:
            settings.override(
                WORKER_METRICS_HOST=previous.WORKER_METRICS_HOST,
                WORKER_METRICS_PORT=previous.WORKER_METRICS_PORT,
            )


@pytest.mark.parametrize(
    "mode,token,header,status",
    [
        ("production", "", None, 404),
        ("production", "t0k3n-f0r-the-scr4per", None, 401),
        ("production", "t0k3n-f0r-the-scr4per", "Bearer wrong", 401),
        ("production", "t0k3n-f0r-the-scr4per", "Bearer t0k3n-f0r-the-scr4per", 200),
        ("demo", "", None, 200),
    ],
)
def test_worker_metrics_need_the_metrics_token_like_the_web_app(mode, token, header, status):
    """The worker pool's /metrics follows the web app's rule (psymatch/ops_access.py)."""
    import threading
    import urllib.error
    import urllib.request
    from http.server import ThreadingHTTPServer

    from workers.observability import _MetricsHandler, worker_metrics_dir

    before = settings.get()
    settings.override(PSYMATCH_MODE=mode, METRICS_TOKEN=token)
    worker_metrics_dir().mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetricsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{server.server_port}/metrics")
        if header:
            request.add_header("Authorization", header)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                got = response.status
        except urllib.error.HTTPError as error:
            got = error.code
        assert got == status
    finally:
        server.shutdown()
        server.server_close()
        settings.override(PSYMATCH_MODE=before.PSYMATCH_MODE, METRICS_TOKEN=before.METRICS_TOKEN)
