"""Webhook payloads shaped like the providers' documented formats, correctly signed.

Mailgun: routes forwarding ("store and notify" / forward), form fields with
``timestamp``/``token``/``signature``. Postmark: the inbound JSON with basic auth.
Raw: an RFC 5322 message signed with ``X-Psymatch-Signature``.

A reply to an Anfrage (``anfrage_id``) goes to its signed reply address and comes, unless
``sender`` says otherwise, from the email of the Anfrage's therapist: only such a reply is
recorded automatically (docs/domain.md §9.2).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
import uuid
from email.message import EmailMessage
from email.utils import format_datetime

from psymatch import settings
from psymatch.domain import tokens
from psymatch.domain.answer_form import form_line
from webhooks import providers

SENDER = "praxis@example.org"


def sender_of(anfrage_id: int | None) -> str:
    """The email of the Anfrage's therapist (from the test database), else ``SENDER``."""
    if anfrage_id:
        from db.models import Therapeutenanfrage, Therapist

        therapist = (
            Therapist.select(Therapist.email)
            .join(Therapeutenanfrage)
            .where(Therapeutenanfrage.id == anfrage_id)
            .first()
        )
        if therapist is not None and therapist.email:
            return therapist.email
    return SENDER


def reply_text(patients: list[int], answers: dict[int, str] | None = None) -> str:
    """A reply with the structured form filled in (``answers``: patient -> ja/kap/ng/both)."""
    marks = {"ja": 0, "kap": 1, "ng": 2}
    lines = ["Guten Tag,", "", "anbei meine Antwort.", ""]
    for position, patient in enumerate(patients, 1):
        line = form_line(position, patient)
        answer = (answers or {}).get(patient)
        if answer == "both":
            line = line.replace("[ ]", "[x]", 2)
        elif answer is not None:
            parts = line.split("[ ]")
            index = marks[answer] + 1
            line = "[ ]".join(parts[:index]) + "[x]" + "[ ]".join(parts[index:])
        lines.append(line)
    lines += ["", "Mit freundlichen Grüßen", "Dr. Tina Thera"]
    return "\n".join(lines)


def new_message_id() -> str:
    return f"<{uuid.uuid4().hex}@mail.example.org>"


def mailgun(
    *,
    anfrage_id: int | None = None,
    text: str = "Hallo",
    subject: str = "AW: Anfrage",
    message_id: str | None = None,
    recipient: str | None = None,
    timestamp: int | str | None = None,
    token: str | None = None,
    extra_headers: list[list[str]] = (),
    sender: str | None = None,
) -> dict[str, str]:
    sender = sender or sender_of(anfrage_id)
    recipient = recipient or (
        tokens.reply_address(anfrage_id) if anfrage_id else "info@antwort.psymatch.example"
    )
    message_id = message_id or new_message_id()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or secrets.token_hex(25)
    headers = [
        ["Received", "from mail.example.org by mxa.mailgun.org"],
        ["From", f"Dr. Tina Thera <{sender}>"],
        ["To", recipient],
        ["Subject", subject],
        ["Message-Id", message_id],
        ["Date", format_datetime(dt.datetime.now(dt.UTC))],
        ["Mime-Version", "1.0"],
        ["Content-Type", 'text/plain; charset="utf-8"'],
        *extra_headers,
    ]
    return {
        "timestamp": stamp,
        "token": token,
        "signature": providers.mailgun_signature(stamp, token),
        "recipient": recipient,
        "sender": sender,
        "from": f"Dr. Tina Thera <{sender}>",
        "subject": subject,
        "body-plain": text,
        "stripped-text": text.split("\n>")[0],
        "stripped-signature": "",
        "body-html": "<html><body><pre>" + text + "</pre></body></html>",
        "stripped-html": "",
        "attachment-count": "0",
        "Message-Id": message_id,
        "In-Reply-To": "",
        "References": "",
        "message-headers": json.dumps(headers),
    }


def postmark(
    *,
    anfrage_id: int | None = None,
    text: str = "Hallo",
    subject: str = "AW: Anfrage",
    message_id: str | None = None,
    extra_headers: list[dict] = (),
    sender: str | None = None,
) -> dict:
    sender = sender or sender_of(anfrage_id)
    recipient = tokens.reply_address(anfrage_id) if anfrage_id else "info@antwort.psymatch.example"
    return {
        "FromName": "Dr. Tina Thera",
        "MessageStream": "inbound",
        "From": sender,
        "FromFull": {"Email": sender, "Name": "Dr. Tina Thera", "MailboxHash": ""},
        "To": recipient,
        "ToFull": [{"Email": recipient, "Name": "", "MailboxHash": ""}],
        "Cc": "",
        "CcFull": [],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": recipient,
        "Subject": subject,
        "MessageID": message_id or str(uuid.uuid4()),
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": "Mon, 30 Nov 2026 09:00:00 +0100",
        "TextBody": text,
        "HtmlBody": "<p>" + text + "</p>",
        "StrippedTextReply": text.split("\n>")[0],
        "Tag": "",
        "Headers": [
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "Message-ID", "Value": new_message_id()},
            *extra_headers,
        ],
        "Attachments": [],
    }


def postmark_auth(user: str | None = None, password: str | None = None) -> dict[str, str]:
    s = settings.get()
    pair = f"{user or s.POSTMARK_WEBHOOK_USER}:{password or s.POSTMARK_WEBHOOK_PASSWORD}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def raw(
    *,
    anfrage_id: int | None = None,
    text: str = "Hallo",
    subject: str = "AW: Anfrage",
    message_id: str | None = None,
    extra_headers: dict[str, str] | None = None,
    sender: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = f"Dr. Tina Thera <{sender or sender_of(anfrage_id)}>"
    message["To"] = (
        tokens.reply_address(anfrage_id) if anfrage_id else "info@antwort.psymatch.example"
    )
    message["Subject"] = subject
    message["Message-ID"] = message_id or new_message_id()
    for name, value in (extra_headers or {}).items():
        message[name] = value
    message.set_content(text)
    return message.as_bytes()


def raw_headers(body: bytes, secret: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "message/rfc822",
        "X-Psymatch-Signature": providers.raw_signature(body, secret),
    }
