"""Bounded parsing at the webhook edge (issue 14): deeply nested JSON, deeply nested or
many-part MIME and oversized form posts are refused with a 4xx and store nothing; a 413
names the limit that applied; request lines in the logs carry no whole link token."""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from db.models import InboundMessage, OutboxItem, TherapeutAnfragePatient
from operations.bundles import create_anfrage
from psymatch import logs, settings
from psymatch.domain import reply_parse, tokens
from psymatch.ports import free_port
from tests import factories as f
from tests import webhook_payloads as wp
from webhooks import inbound, providers
from webhooks.app import create_app

MAILGUN = "/webhooks/inbound/mailgun"
POSTMARK = "/webhooks/inbound/postmark"
RAW = "/webhooks/inbound/raw"


@pytest.fixture
def client(clean_db):
    return create_app({"TESTING": True}).test_client()


def counts() -> tuple[int, int]:
    return InboundMessage.select().count(), OutboxItem.select().count()


def refused(response, status: int, code: str) -> dict:
    body = response.get_json()
    assert response.status_code == status, (response.status_code, body)
    assert body["status"] == "rejected" and body["error"] == code, body
    assert counts() == (0, 0)
    return body


def nested_multipart(depth: int) -> bytes:
    head = f"From: Dr. Tina Thera <{wp.SENDER}>\r\nTo: info@antwort.psymatch.example\r\n"
    head += "Subject: AW: Anfrage\r\nMessage-ID: <deep@example.org>\r\nMIME-Version: 1.0\r\n"
    levels = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    return (head + levels + "Content-Type: text/plain\r\n\r\nJa, gerne.\r\n").encode()


def flat_multipart(parts: int) -> bytes:
    head = f"From: {wp.SENDER}\r\nTo: info@antwort.psymatch.example\r\nSubject: x\r\n"
    head += 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    body = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\nTeil {i}\r\n" for i in range(parts))
    return (head + body + "--b--\r\n").encode()


def post_raw(client, body: bytes):
    return client.post(RAW, data=body, headers=wp.raw_headers(body))


# --- JSON -----------------------------------------------------------------------------------


def test_deeply_nested_postmark_json_is_400_and_stores_nothing(client):
    payload = wp.postmark()
    text = json.dumps(payload)[:-1] + ', "Extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post(
        POSTMARK,
        data=text,
        headers={**wp.postmark_auth(), "Content-Type": "application/json"},
    )
    body = refused(response, 400, "too_deep")
    assert str(providers.JSON_MAX_DEPTH) in body["message"]


def test_deeply_nested_mailgun_headers_are_400_and_store_nothing(client):
    fields = wp.mailgun()
    fields["message-headers"] = "[" * 50_000 + "]" * 50_000
    refused(client.post(MAILGUN, data=fields), 400, "too_deep")


def test_json_within_the_depth_is_accepted(client):
    payload = wp.postmark()
    payload["Extra"] = json.loads("[" * 30 + "]" * 30)  # 31 levels with the body object
    response = client.post(POSTMARK, json=payload, headers=wp.postmark_auth())
    assert response.status_code == 202, response.get_json()


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("[" * 32 + "]" * 32, False),
        ("[" * 33 + "]" * 33, True),
        ('{"a": "' + "[" * 500 + '"}', False),  # brackets in strings do not count
        ('["\\"' + "[" * 40 + '"]', False),  # nor after an escaped quote
        ("[" * 40, False),  # unbalanced: json.loads refuses it
        ("[[]]" * 10_000, False),
        ("", False),
    ],
)
def test_json_depth_check(text, deep):
    assert providers.json_too_deep(text) is deep


def test_a_recursion_error_is_refused_too(monkeypatch):
    monkeypatch.setattr(providers, "json_too_deep", lambda text: False)
    with pytest.raises(providers.Rejected) as caught:
        providers.load_json("[" * 200_000 + "]" * 200_000, "body")
    assert (caught.value.status, caught.value.code) == (400, "too_deep")


def test_postmark_lists_are_bounded(client):
    payload = wp.postmark()
    payload["Headers"] = [{"Name": "X-N", "Value": str(i)} for i in range(1001)]
    response = client.post(POSTMARK, json=payload, headers=wp.postmark_auth())
    refused(response, 400, "too_many_parts")


# --- MIME -----------------------------------------------------------------------------------


def test_a_50000_deep_multipart_is_400_and_stores_nothing(client):
    body = refused(post_raw(client, nested_multipart(50_000)), 400, "too_deep")
    assert str(providers.MIME_MAX_DEPTH) in body["message"]


def test_multipart_within_the_bounds_is_accepted(client):
    response = post_raw(client, nested_multipart(providers.MIME_MAX_DEPTH - 1))
    assert response.status_code == 202, response.get_json()
    row = InboundMessage.get()
    assert "Ja, gerne." in json.loads(row.message)["text"]


def test_too_many_mime_parts_are_400(client):
    assert post_raw(client, flat_multipart(50)).status_code == 202
    InboundMessage.delete().execute()
    OutboxItem.delete().execute()
    refused(post_raw(client, flat_multipart(150)), 400, "too_many_parts")


def test_parse_mime_counts_parts_and_depth():
    message = providers.parse_mime(nested_multipart(3))
    assert sum(1 for _ in message.walk()) == 4
    with pytest.raises(providers.Rejected):
        providers.parse_mime(nested_multipart(providers.MIME_MAX_DEPTH + 1))


def test_text_for_the_reply_parser_is_capped(client):
    big = "Ja. " * 100_000
    response = client.post(POSTMARK, json=wp.postmark(text=big), headers=wp.postmark_auth())
    assert response.status_code == 202
    stored = json.loads(InboundMessage.get().message)
    assert len(stored["text"]) == providers.TEXT_MAX


def test_deep_blockquotes_quote_a_bounded_number_of_levels():
    html = "<blockquote>" * 5000 + "alt" + "</blockquote>" * 5000 + "<p>neu</p>"
    text = reply_parse.html_to_text(html)
    assert "> " * reply_parse.MAX_QUOTE_DEPTH + "alt" in text
    assert len(text) < 200


# --- forms and the size limit ---------------------------------------------------------------


@pytest.mark.parametrize("multipart", [False, True])
def test_too_many_form_fields_are_400(client, multipart):
    fields = wp.mailgun()
    fields.update({f"x-{i}": "1" for i in range(150)})
    kwargs = {"content_type": "multipart/form-data"} if multipart else {}
    refused(client.post(MAILGUN, data=fields, **kwargs), 400, "too_many_parts")


def test_a_large_field_within_the_limit_is_accepted(client):
    """Flask's own per-field limit (500 kB) no longer applies: WEBHOOK_MAX_BYTES is the one."""
    fields = wp.mailgun(text="Ja. " * 200_000)  # 800 kB in body-plain (and body-html)
    response = client.post(MAILGUN, data=fields, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()


@pytest.mark.parametrize("provider", ["mailgun", "postmark", "raw"])
def test_a_413_names_the_limit_and_its_value(client, provider):
    settings.override(WEBHOOK_MAX_BYTES=20_000)
    try:
        if provider == "mailgun":
            response = client.post(
                MAILGUN, data=wp.mailgun(text="x" * 30_000), content_type="multipart/form-data"
            )
        elif provider == "postmark":
            response = client.post(
                POSTMARK, json=wp.postmark(text="x" * 30_000), headers=wp.postmark_auth()
            )
        else:
            response = post_raw(client, wp.raw(text="x" * 30_000))
        body = refused(response, 413, "too_large")
    finally:
        settings.override(WEBHOOK_MAX_BYTES=settings.Settings.WEBHOOK_MAX_BYTES)
    assert body["message"] == inbound.too_large_message(20_000)
    assert "WEBHOOK_MAX_BYTES" in body["message"] and "20000 bytes" in body["message"]


def test_a_chunked_body_over_the_limit_names_the_limit(client):
    settings.override(WEBHOOK_MAX_BYTES=20_000)
    try:
        body = wp.raw(text="x" * 30_000)
        response = client.post(  # no Content-Length: the server says the stream ends
            RAW,
            input_stream=io.BytesIO(body),
            headers=wp.raw_headers(body),
            environ_overrides={"wsgi.input_terminated": True},
        )
        refused(response, 413, "too_large")
        assert "WEBHOOK_MAX_BYTES (20000 bytes)" in response.get_json()["message"]
    finally:
        settings.override(WEBHOOK_MAX_BYTES=settings.Settings.WEBHOOK_MAX_BYTES)


# --- link tokens in request logs ------------------------------------------------------------

TOKEN = "1.12.34.j.1999999999.AbCdEfGhIjKlMnOpQrStUv"


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (f"GET /r/{TOKEN} HTTP/1.1", "GET /r/1.12.3… HTTP/1.1"),
        (f"POST /r/{TOKEN}?x=1 HTTP/1.1", "POST /r/1.12.3…?x=1 HTTP/1.1"),
        (f"https://psymatch.example/r/{TOKEN}", "https://psymatch.example/r/1.12.3…"),
        ("GET /l/abcdefghijklmnop HTTP/1.1", "GET /l/abcdef… HTTP/1.1"),
        ("GET /x?token=abcdefghijkl&y=2", "GET /x?token=abcdef…&y=2"),
        ("GET /readyz HTTP/1.1", "GET /readyz HTTP/1.1"),
        ("GET /r/abc HTTP/1.1", "GET /r/abc HTTP/1.1"),
    ],
)
def test_mask_link_tokens(line, masked):
    assert logs.mask_link_tokens(line) == masked


def test_werkzeug_request_lines_are_masked(caplog):
    logs.setup(fmt="text")
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info(
            '%s - - [%s] "%s" %s %s', "127.0.0.1", "now", f"GET /r/{TOKEN} HTTP/1.1", 200, "-"
        )
    assert TOKEN not in caplog.text and "/r/1.12.3…" in caplog.text


def _get(port: int, method: str, path: str, headers=None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _try(port: int) -> int | None:
    try:
        return _get(port, "GET", "/healthz")
    except OSError:
        return None


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_gunicorn_access_log_keeps_no_link_token(clean_db, cli_env, redis_url, tmp_path, fmt):
    """A real gunicorn serves a real one-click link (GET and the confirming POST with the
    link as Referer); its access log names the route with the token cut short."""
    therapist = f.therapist()
    f.searches(1)
    anfrage_id = create_anfrage(therapist.id, now=f.NOW).anfrage_id
    line = TherapeutAnfragePatient.get(TherapeutAnfragePatient.therapeutenanfrage == anfrage_id)
    patient_id = line.patient_id
    token = tokens.make_link_token(anfrage_id, patient_id, "angenommen")
    port = free_port()
    env = {
        **cli_env,
        "REDIS_URL": redis_url,
        "METRICS_DIR": str(tmp_path / "metrics"),
        "LOG_FORMAT": fmt,
    }
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-c",
                "webhooks/gunicorn_conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--access-logfile",
                "-",
                "webhooks.app:create_app()",
            ],
            env=env,
            cwd=settings.PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while _try(port) != 200:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        link = f"/r/{token}"
        assert _get(port, "GET", link) == 200
        referer = {"Referer": f"http://127.0.0.1:{port}{link}"}
        assert _get(port, "POST", link + f"?token={token}", referer) == 200
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    text = log.read_text()
    access = [line for line in text.splitlines() if "/r/" in line]
    assert len(access) == 2, text
    assert token not in text and token[-22:] not in text
    assert all(f"/r/{token[:6]}…" in line for line in access), access
