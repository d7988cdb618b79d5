"""The flow every fault runs through: seed, round, inquiry emails, replies via the webhook.

Seed ``THERAPISTS`` practices (one therapist each, own address) and ``SEARCHES`` aktiv
Platzsuchen in Berlin; the round (a ``bundle_round`` outbox item, run by the worker)
gives every practice one bundle, so ``THERAPISTS`` inquiries go out. The first
``REPLIES`` of them are answered with a refusal for every patient, as raw RFC 5322
messages signed for ``/webhooks/inbound/raw``, posted to the real webhook server.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.error
import urllib.request
from email.message import EmailMessage

from db.database import write_transaction
from db.models import (
    Email,
    InboundMessage,
    OutboxItem,
    Patient,
    Platzsuche,
    PlzCentroid,
    Therapeutenanfrage,
    Therapist,
    utcnow,
)

THERAPISTS = 24
SEARCHES = 30
REPLIES = 20
ROUND_KEY = "faults:bundle_round"
SUBJECT = re.compile(r"Ref: A(\d+)")
REPLY_TEXT = "Leider habe ich derzeit keine Kapazität.\n\nMit freundlichen Grüßen\nIhre Praxis\n"


def _located(plz: str) -> dict:
    place = PlzCentroid.get_by_id(plz)
    return {
        "plz": plz,
        "latitude": place.latitude,
        "longitude": place.longitude,
        "geo_quelle": "plz",
        "geo_plz": plz,
    }


def seed(therapists: int = THERAPISTS, searches: int = SEARCHES) -> None:
    """Practices and waiting searches the round can bundle (one transaction)."""
    now = utcnow()
    with write_transaction():
        for n in range(therapists):
            Therapist.create(
                external_id=f"F-T{n}",
                anrede="Frau",
                geschlecht="weiblich",
                vorname="Tina",
                nachname=f"Fault{n:02d}",
                email=f"praxis{n}@faults.example",
                status="aktiv",
                **_located("10115"),
            )
        for n in range(searches):
            patient = Patient.create(
                external_id=f"F-P{n}",
                anrede="Herr",
                geschlecht="männlich",
                vorname="Paul",
                nachname=f"Fault{n:02d}",
                email=f"paul{n}@faults.example",
                krankenkasse="TK",
                geburtsdatum=dt.date(1990, 1, 1),
                symptome=["Schlafstörungen"],
                erfahrung_mit_psychotherapie=False,
                offen_fuer_gruppentherapie=True,
                zeitliche_verfuegbarkeit={"montag": ["09:00-17:00"]},
                **_located("10117"),
            )
            created = now - dt.timedelta(days=10 + n, hours=1)
            Platzsuche.create(patient=patient, created_at=created, updated_at=created)


def queue_round() -> None:
    """The round as outbox work: a worker runs it; reconcile puts it back if it is lost."""
    OutboxItem.insert(
        task="bundle_round", payload={}, dedupe_key=ROUND_KEY, created_at=utcnow()
    ).execute()


def anfragen() -> int:
    return Therapeutenanfrage.select().count()


def round_done() -> bool:
    item = OutboxItem.get_or_none(OutboxItem.dedupe_key == ROUND_KEY)
    return item is not None and item.status == "erledigt" and anfragen() > 0


def emails_created() -> int:
    return Email.select().count()


def emails_marked_sent() -> int:
    return Email.select().where(Email.status == "Gesendet").count()


def inquiries(sink) -> dict[int, list]:
    """Messages the SMTP server accepted, per Anfrage named in the subject."""
    out: dict[int, list] = {}
    for message in sink.received():
        match = SUBJECT.search(str(message["Subject"] or ""))
        if match:
            out.setdefault(int(match[1]), []).append(message)
    return out


def replies_for(sink, count: int = REPLIES) -> list[tuple[str, bytes]]:
    """(message key, raw bytes) of a refusal to each of the first ``count`` inquiries;
    the key is the one the webhook stores the delivery under."""
    from webhooks.providers import message_key

    received = inquiries(sink)
    out = []
    for anfrage_id in sorted(received)[:count]:
        original = received[anfrage_id][0]
        reply = EmailMessage()
        reply["From"] = str(original["To"])
        reply["To"] = str(original["Reply-To"])
        reply["Subject"] = f"AW: {original['Subject']}"
        reply["In-Reply-To"] = str(original["Message-ID"])
        message_id = f"<reply-a{anfrage_id}@faults.example>"
        reply["Message-ID"] = message_id
        reply.set_content(REPLY_TEXT)
        out.append((message_key("mid", message_id, ""), reply.as_bytes()))
    return out


def post_reply(base_url: str, body: bytes) -> int:
    """POST one reply as the email provider would; the HTTP status."""
    from webhooks.providers import raw_signature

    request = urllib.request.Request(
        f"{base_url}/webhooks/inbound/raw",
        data=body,
        method="POST",
        headers={"Content-Type": "message/rfc822", "X-Psymatch-Signature": raw_signature(body)},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def deliver(base_url: str, replies: list[tuple[str, bytes]], attempts: int = 20) -> list[int]:
    """Deliver each reply like a provider: repeat on 5xx until it is taken (2xx)."""
    import time

    statuses = []
    for _, body in replies:
        for _ in range(attempts):
            status = post_reply(base_url, body)
            statuses.append(status)
            if status < 500:
                break
            time.sleep(0.2)
    return statuses


def replies_processed() -> int:
    return InboundMessage.select().where(InboundMessage.status != "neu").count()


def outbox_open() -> int:
    return OutboxItem.select().where(OutboxItem.status != "erledigt").count()
