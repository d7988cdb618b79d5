"""Fuzzing the inbound webhooks: random and mutated payloads never give a 5xx, and a
refused request never writes a row.

A seeded generator sends 5,200 requests across the three endpoints (valid payloads
mutated: dropped and retyped fields, random bytes, truncated JSON, flipped signatures,
stale timestamps, NUL characters and lone surrogates, huge headers and bodies, wrong
content types); hypothesis adds structured JSON/form values. After each request the
row counts must have grown by exactly one InboundMessage and one OutboxItem for a 202
and by nothing otherwise. Finally every stored delivery is processed without an error.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import secrets
import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from db import database
from db.models import InboundMessage
from operations import replies as ops
from psymatch import settings
from tests import webhook_payloads as wp
from webhooks import inbound, providers
from webhooks.app import create_app

REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "5200"))
MAX_BYTES = 64 * 1024
MAILGUN = "/webhooks/inbound/mailgun"
POSTMARK = "/webhooks/inbound/postmark"
RAW = "/webhooks/inbound/raw"

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "ä" * 400,
    "<" * 500,
    "x" * 5000,
    "null",
    "[]",
    "{}",
    "[[1, 2]]",
    '[["From"]]',
    '[["To", 5]]',
    "-1",
    "1e309",
    "antwort+a1.aaaaaaaaaaaaaaaa@antwort.psymatch.example",
    "=?utf-8?b?w6TDtsO8?=",
    "\r\n\r\n",
    "A" * 70000,
]
JSON_VALUES = [None, 0, -1, 3.5, True, "", "x", [], {}, [1, "a"], {"Name": 1}, "\u0000"]


def header_text(rng: random.Random) -> str:
    """Random text that an HTTP client can put in a header (no line breaks, latin-1)."""
    text = random_text(rng).encode("latin-1", "ignore").decode("latin-1")
    return text.replace("\r", "").replace("\n", "")


def random_bytes(rng: random.Random, upto: int = 2000) -> bytes:
    return rng.randbytes(rng.randint(0, upto))


def random_text(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.4:
        return rng.choice(NASTY)
    if choice < 0.7:
        return "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 60)))
    return random_bytes(rng, 200).decode("latin-1")


COUNTS_SQL = "SELECT (SELECT count(*) FROM inbound_messages), (SELECT count(*) FROM outbox)"
_observer = {}


@pytest.fixture
def fuzz_client(clean_db, migrated):
    """The app, plus a connection of the test's own that counts rows between requests.

    The app closes its connection after every request; counting on a separate, open
    connection keeps that cheap (and SQLite skips the WAL checkpoint at each close).
    """
    settings.override(WEBHOOK_MAX_BYTES=MAX_BYTES)
    observer = database.database_from_url(migrated)
    observer.connect()
    _observer["db"] = observer
    app = create_app({"TESTING": True})
    inbound.register(app)
    yield app.test_client()
    observer.close()
    _observer.clear()
    settings.override(WEBHOOK_MAX_BYTES=settings.Settings.WEBHOOK_MAX_BYTES)


def counts() -> tuple[int, int]:
    inbound_rows, outbox_rows = _observer["db"].execute_sql(COUNTS_SQL).fetchone()
    return inbound_rows, outbox_rows


# --- mutations per endpoint ---------------------------------------------------------------


def mailgun_request(rng: random.Random) -> dict:
    fields = wp.mailgun(anfrage_id=rng.choice([None, 1, 2]), text=random_text(rng))
    resign = rng.random() < 0.6
    for _ in range(rng.randint(0, 4)):
        kind = rng.random()
        name = rng.choice(list(fields) + ["extra", "Message-Id", "message-headers"])
        if kind < 0.3:
            fields.pop(name, None)
        elif kind < 0.8:
            fields[name] = random_text(rng)
        else:
            fields["message-headers"] = json.dumps(
                [[random_text(rng), random_text(rng)] for _ in range(rng.randint(0, 50))]
            )
    if resign and isinstance(fields.get("timestamp"), str) and isinstance(fields.get("token"), str):
        if rng.random() < 0.2:
            fields["timestamp"] = str(int(time.time()) + rng.choice([-10_000, -301, 301, 5]))
        fields["signature"] = providers.mailgun_signature(fields["timestamp"], fields["token"])
    elif "signature" in fields and rng.random() < 0.5:
        signature = list(fields["signature"])
        if signature:
            signature[rng.randrange(len(signature))] = rng.choice("0123456789abcdef")
        fields["signature"] = "".join(signature)
    fields = {k: v.replace("\x00", "") if rng.random() < 0.5 else v for k, v in fields.items()}
    roll = rng.random()
    if roll < 0.05:
        return {"data": random_bytes(rng), "content_type": "application/x-www-form-urlencoded"}
    if roll < 0.1:
        return {"data": random_bytes(rng), "content_type": "multipart/form-data; boundary=xyz"}
    if roll < 0.15:
        return {"json": fields}
    if roll < 0.2:
        return {"data": {**fields, "attachment-1": (io.BytesIO(b"x"), "a.pdf")}}
    return {"data": fields}


def _mutate_json(rng: random.Random, data):
    if isinstance(data, dict) and data:
        key = rng.choice(list(data))
        roll = rng.random()
        if roll < 0.3:
            data.pop(key)
        elif roll < 0.7:
            data[key] = rng.choice(JSON_VALUES + [random_text(rng)])
        else:
            data[key] = _mutate_json(rng, data[key])
    elif isinstance(data, list) and data:
        index = rng.randrange(len(data))
        data[index] = rng.choice(JSON_VALUES + [_mutate_json(rng, data[index])])
    return data


def postmark_request(rng: random.Random) -> dict:
    data = wp.postmark(anfrage_id=rng.choice([None, 1]), text=random_text(rng))
    for _ in range(rng.randint(0, 5)):
        data = _mutate_json(rng, data)
    body = json.dumps(data, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    roll = rng.random()
    if roll < 0.1:
        body = body[: rng.randint(0, len(body))]
    elif roll < 0.15:
        body = random_bytes(rng)
    elif roll < 0.2:
        body = json.dumps(rng.choice(JSON_VALUES)).encode()
    headers = {"Content-Type": rng.choice(["application/json"] * 8 + ["text/plain", ""])}
    auth = rng.random()
    if auth < 0.75:
        headers.update(wp.postmark_auth())
    elif auth < 0.85:
        headers.update(wp.postmark_auth(password=header_text(rng)))
    elif auth < 0.95:
        headers["Authorization"] = "Basic " + base64.b64encode(random_bytes(rng, 40)).decode()
    else:
        headers["Authorization"] = header_text(rng)
    return {"data": body, "headers": headers}


def raw_request(rng: random.Random) -> dict:
    roll = rng.random()
    if roll < 0.3:
        body = wp.raw(text=random_text(rng).replace("\ud800", ""))
    elif roll < 0.5:
        body = random_bytes(rng)
    elif roll < 0.7:
        body = wp.raw(text="Hallo")
        body = body[: rng.randint(0, len(body))]
    elif roll < 0.8:
        body = b"From: a@b.de\r\nX-Huge: " + b"h" * rng.randint(1000, 80_000) + b"\r\n\r\nText"
    else:
        header = random_bytes(rng, 100).replace(b"\n", b"")
        body = b"From: " + header + b"\r\nSubject: " + random_bytes(rng, 100) + b"\r\n\r\n\xff\x00"
    headers = wp.raw_headers(body)
    sig = rng.random()
    if sig < 0.15:
        headers["X-Psymatch-Signature"] = "sha256=" + secrets.token_hex(32)
    elif sig < 0.2:
        headers["X-Psymatch-Signature"] = header_text(rng)
    elif sig < 0.25:
        del headers["X-Psymatch-Signature"]
    if rng.random() < 0.1:
        headers["Content-Type"] = rng.choice(["text/plain", "application/json", "message/rfc822x"])
    elif rng.random() < 0.2:
        headers["Content-Type"] = "application/octet-stream"
    return {"data": body, "headers": headers}


MAILGUN_FIELDS = ["recipient", "sender", "from", "subject", "body-plain", "message-headers"]
ENDPOINTS = [(MAILGUN, mailgun_request), (POSTMARK, postmark_request), (RAW, raw_request)]


def send_and_check(client, url: str, kwargs: dict, stats: dict) -> None:
    before = stats.get("counts") or counts()
    try:
        response = client.post(url, **kwargs)
    except UnicodeEncodeError:  # the test client cannot even build such a request
        stats["unsendable"] = stats.get("unsendable", 0) + 1
        return
    status = response.status_code
    stats[status] = stats.get(status, 0) + 1
    assert status < 500, (url, status, response.get_data(as_text=True)[:300])
    after = counts()
    expected = (before[0] + 1, before[1] + 1) if status == 202 else before
    assert after == expected, (url, status, before, after)
    stats["counts"] = after


def test_random_and_mutated_payloads(fuzz_client):
    rng = random.Random(20261130)
    stats: dict = {}
    started = time.monotonic()
    for _ in range(REQUESTS):
        url, make = rng.choice(ENDPOINTS)
        send_and_check(fuzz_client, url, make(rng), stats)
    elapsed = time.monotonic() - started
    stats.pop("counts", None)
    print(f"fuzz: {REQUESTS} requests in {elapsed:.1f}s: {sorted(stats.items(), key=str)}")
    assert sum(v for k, v in stats.items() if isinstance(k, int)) >= 5000
    # every kind of refusal was exercised, and some deliveries were accepted
    assert {202, 400, 401, 406, 413, 415} <= set(stats)
    # whatever was stored can be processed without an exception (a sample, for time)
    for row in InboundMessage.select().order_by(InboundMessage.id).limit(400):
        assert ops.process_inbound(row.id) in ("verarbeitet", "pruefung", "ignoriert", "fehler")


@hsettings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.dictionaries(
        st.sampled_from(
            ["From", "To", "ToFull", "Subject", "MessageID", "TextBody", "HtmlBody", "Headers"]
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=50),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.sampled_from(["Name", "Value", "Email"]), inner, max_size=3)
            ),
            max_leaves=10,
        ),
    ),
    fields=st.dictionaries(
        st.sampled_from(MAILGUN_FIELDS),
        st.text(max_size=80),
    ),
)
def test_structured_values(fuzz_client, data, fields):
    stats: dict = {}
    send_and_check(
        fuzz_client,
        POSTMARK,
        {"json": data, "headers": wp.postmark_auth()},
        stats,
    )
    signed = wp.mailgun()
    for name in MAILGUN_FIELDS:
        signed.pop(name, None)
    signed.update(fields)
    send_and_check(fuzz_client, MAILGUN, {"data": signed}, stats)
