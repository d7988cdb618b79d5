"""Inbound email providers: verify a delivery, check its shape, decode it.

The one module that knows the providers' formats. Nothing here touches HTTP or the
database: the views in ``webhooks/inbound.py`` hand over form fields, JSON objects or
bytes and get back a ``Normalised`` delivery or a ``Rejected`` error (an HTTP status and a
short code). ``Normalised.message`` is the reply decoded into the provider-neutral
``psymatch.domain.reply_parse.Message`` that ``operations.replies.store_inbound`` stores
next to the raw payload; processing and the console read only that. Secrets come from
settings and are compared in constant time.

Mailgun (routes forwarding, form fields)
    ``signature`` = hex HMAC-SHA256(``MAILGUN_SIGNING_KEY``, ``timestamp + token``). A
    timestamp further than ``WEBHOOK_TIMESTAMP_TOLERANCE_S`` from now (either way) is
    refused with 406. Each ``token`` may be used once: ``replay_marker`` names it (by its
    hash), and storing remembers it together with the message it came with
    (``WebhookReplayMarker``, in the same transaction as the message), so a retry of the
    *same* message is a harmless duplicate, while the token with another message (a
    captured signature on a forged body) is refused with 406. Markers older than twice
    the window are deleted now and then.
Postmark (JSON)
    HTTP basic auth with ``POSTMARK_WEBHOOK_USER`` / ``POSTMARK_WEBHOOK_PASSWORD``.
Raw (``message/rfc822`` body)
    ``X-Psymatch-Signature: sha256=<hex HMAC-SHA256(RAW_WEBHOOK_SECRET, body)>``.

Message keys: the provider's own message id for Postmark (``postmark:<MessageID>``),
the RFC Message-ID for Mailgun and raw deliveries (``mid:<id>``, shared so that the same
email delivered both ways is stored once), else ``sha256:`` of the content (signature
fields excluded, so a re-signed retry hits the same key).

Bounded parsing (every limit checked before or while decoding, so a hostile delivery costs
little CPU; a violation is a ``Rejected`` 400 with the code ``too_deep`` or
``too_many_parts`` and nothing is stored): JSON (the Postmark body, Mailgun's
``message-headers``) at most ``JSON_MAX_DEPTH`` levels deep; MIME (raw deliveries) at most
``MIME_MAX_PARTS`` parts and ``MIME_MAX_DEPTH`` levels of nesting, counted by the
stdlib parser itself as it creates each part; at most ``FORM_MAX_PARTS`` form fields and
files (Mailgun, checked by ``webhooks.inbound``) and ``HEADERS_MAX`` header pairs. The
reply parser gets at most ``TEXT_MAX`` characters of text and of HTML.

Stored raw payloads (audit only): ``mailgun`` the JSON object of the form fields as posted;
``postmark`` the JSON body as posted; ``raw`` ``{"rfc822": text}`` (or ``{"rfc822_base64":
...}`` when the bytes are not clean UTF-8).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from email import policy
from email.feedparser import BytesFeedParser
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr

from psymatch import mail_policy, settings
from psymatch.domain import reply_parse

SENDER_MAX = 254
RECIPIENT_MAX = 500
SUBJECT_MAX = 2000
KEY_MAX = 300
_SIGNATURE_FIELDS = ("timestamp", "token", "signature")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")

JSON_MAX_DEPTH = 32  # nesting levels of a JSON document (Postmark's own use 3)
MIME_MAX_PARTS = 100  # MIME parts of one message, the message itself included
MIME_MAX_DEPTH = 10  # levels of multipart / message nesting below the message
FORM_MAX_PARTS = 100  # form fields and files of one Mailgun post
HEADERS_MAX = 1000  # header pairs of a provider's header list
TEXT_MAX = 200_000  # characters of text (and of HTML) handed to the reply parser


class Rejected(Exception):
    """A delivery refused with an HTTP status; nothing is stored."""

    def __init__(self, status: int, code: str, message: str = ""):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message or code


@dataclass(frozen=True)
class Normalised:
    """A verified delivery: its key, raw payload, the columns shown in lists, and the
    decoded reply (``message``; None with the reason in ``unreadable`` when decoding
    failed: such a delivery is stored and marked ``fehler`` by processing)."""

    provider: str
    message_key: str
    raw_payload: str
    sender: str | None
    recipient: str | None
    subject: str | None
    message: reply_parse.Message | None = None
    unreadable: str | None = None


def _decoded(decode, *args) -> dict:
    """``message`` / ``unreadable`` of ``Normalised`` from a decoder and its arguments.

    A ``Rejected`` (a limit of this module) passes: such a delivery is not stored."""
    try:
        message = decode(*args)
    except Rejected:
        raise
    except Exception as exc:  # the sender's problem: stored, then marked "fehler"
        return {"message": None, "unreadable": repr(exc)[:500]}
    if len(message.text) > TEXT_MAX:
        message = dataclasses.replace(message, text=message.text[:TEXT_MAX])
    return {"message": message}


def _cap(value: str | None) -> str | None:
    """Text or HTML for the reply parser: at most ``TEXT_MAX`` characters."""
    return value[:TEXT_MAX] if isinstance(value, str) else value


# --- bounded decoding ------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


def json_too_deep(text: str, limit: int = JSON_MAX_DEPTH) -> bool:
    """Whether ``text`` nests arrays/objects deeper than ``limit`` levels, found without
    recursion: strings removed, only brackets kept, innermost pairs removed level by
    level (each pass runs in C). An unbalanced text is "not too deep": ``json.loads``
    refuses it."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    for _ in range(limit):
        if not brackets:
            return False
        inner = _INNERMOST.sub("", brackets)
        if inner == brackets:
            return False
        brackets = inner
    return bool(brackets) and _INNERMOST.search(brackets) is not None


def load_json(text: str, what: str):
    """``json.loads`` within ``JSON_MAX_DEPTH``; ``Rejected`` 400 otherwise."""
    if json_too_deep(text):
        raise Rejected(400, "too_deep", f"{what} is nested deeper than {JSON_MAX_DEPTH} levels")
    try:
        return json.loads(text)
    except RecursionError:  # not reached after the check above; kept as a guard
        raise Rejected(400, "too_deep", f"{what} is nested too deeply") from None
    except ValueError:
        raise Rejected(400, "malformed", f"{what} is not JSON") from None


class _MimeLimit(Exception):
    pass


def parse_mime(raw: bytes) -> EmailMessage:
    """The message (``policy.default``), parsed by the stdlib within ``MIME_MAX_PARTS``
    parts and ``MIME_MAX_DEPTH`` levels: the parser's factory counts each part as it is
    created and refuses the first one over a limit, so the parse stops early (a
    50,000-deep multipart is refused after 11 parts). ``Rejected`` 400 over a limit."""
    parser = None
    parts = 0

    def factory(policy=mail_policy.DEFAULT):
        nonlocal parts
        if parser is not None:  # FeedParser calls the factory once to probe it
            parts += 1
            if parts > MIME_MAX_PARTS:
                raise _MimeLimit("too_many_parts", f"more than {MIME_MAX_PARTS} MIME parts")
            if len(parser._msgstack) > MIME_MAX_DEPTH:  # the open parents of this part
                raise _MimeLimit(
                    "too_deep", f"MIME parts nested deeper than {MIME_MAX_DEPTH} levels"
                )
        return EmailMessage(policy=policy)

    parser = BytesFeedParser(_factory=factory, policy=mail_policy.DEFAULT)
    try:
        parser.feed(raw)
        return parser.close()
    except _MimeLimit as limit:
        code, message = limit.args
        raise Rejected(400, code, message) from None


def clean(value, limit: int | None = None) -> str | None:
    """Text safe for any column: no NUL, no lone surrogates, at most ``limit`` characters."""
    if value is None:
        return None
    text = str(value).encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return text[:limit] if limit else text


def address_of(value: str | None) -> str | None:
    """The bare address of a From value (``Name <a@b>`` -> ``a@b``), else the text itself."""
    if not value:
        return None
    try:
        _, address = parseaddr(value)
    except Exception:
        address = ""
    return clean(address or value, SENDER_MAX)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def message_key(kind: str, value: str | None, fallback: str) -> str:
    value = clean(value or "").strip().strip("<>").strip() if value else ""
    if not value:
        return f"sha256:{_sha(fallback)}"
    key = f"{kind}:{value}"
    return key if len(key) <= KEY_MAX else f"{kind}-sha256:{_sha(value)}"


# --- Mailgun ------------------------------------------------------------------------------


def mailgun_signature(timestamp: str, token: str, key: str | None = None) -> str:
    key = key if key is not None else settings.get().MAILGUN_SIGNING_KEY
    message = f"{timestamp}{token}".encode("utf-8", "surrogatepass")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_mailgun(fields: dict, now: float | None = None) -> None:
    """Signature (401), then the timestamp window (406). The token is checked at storing."""
    timestamp, token, signature = (fields.get(name) for name in _SIGNATURE_FIELDS)
    if not (isinstance(timestamp, str) and isinstance(token, str) and isinstance(signature, str)):
        raise Rejected(401, "signature_missing", "timestamp, token and signature are required")
    if not timestamp or not token or not _HEX.match(signature):
        raise Rejected(401, "signature_invalid")
    expected = mailgun_signature(timestamp, token)
    if not hmac.compare_digest(expected, signature.lower()):
        raise Rejected(401, "signature_invalid")
    try:
        stamp = int(timestamp)
    except ValueError:
        raise Rejected(406, "timestamp_invalid") from None
    now = time.time() if now is None else now
    if abs(now - stamp) > settings.get().WEBHOOK_TIMESTAMP_TOLERANCE_S:
        raise Rejected(406, "timestamp_stale", "timestamp outside the accepted window")


def normalise_mailgun(fields: dict, attachments: list[str] = ()) -> Normalised:
    recipient = fields.get("recipient")
    sender = fields.get("from") or fields.get("sender")
    if not isinstance(recipient, str) or not recipient.strip():
        raise Rejected(400, "malformed", "recipient is required")
    if not isinstance(sender, str) or not sender.strip():
        raise Rejected(400, "malformed", "sender or from is required")
    headers_text = fields.get("message-headers")
    headers = []
    if headers_text:
        headers = load_json(headers_text, "message-headers")
        if isinstance(headers, list) and len(headers) > HEADERS_MAX:
            raise Rejected(400, "too_many_parts", f"more than {HEADERS_MAX} message-headers")
        if not isinstance(headers, list) or not all(
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(part, str) for part in pair)
            for pair in headers
        ):
            raise Rejected(400, "malformed", "message-headers must be a list of [name, value]")
    message_id = fields.get("Message-Id") or next(
        (value for name, value in headers if name.lower() == "message-id"), None
    )
    payload = {k: v for k, v in fields.items() if isinstance(v, str)}
    if attachments:
        payload["attachments"] = json.dumps(list(attachments))
    content = {k: v for k, v in payload.items() if k not in _SIGNATURE_FIELDS}
    raw = json.dumps(payload, sort_keys=True)
    return Normalised(
        provider="mailgun",
        message_key=message_key("mid", message_id, json.dumps(content, sort_keys=True)),
        raw_payload=raw,
        sender=address_of(sender),
        recipient=clean(recipient, RECIPIENT_MAX),
        subject=clean(fields.get("subject") or "", SUBJECT_MAX),
        **_decoded(_mailgun_message, payload, [(str(n), str(v)) for n, v in headers]),
    )


def _mailgun_message(fields: dict, headers: list[tuple[str, str]]) -> reply_parse.Message:
    return reply_parse.message_from_parts(
        subject=fields.get("subject") or _header(headers, "Subject") or "",
        sender=fields.get("from") or fields.get("sender") or "",
        recipients=_addresses(
            fields.get("recipient"), _header(headers, "To"), _header(headers, "Cc")
        ),
        text=_cap(fields.get("body-plain") or fields.get("stripped-text")),
        html=_cap(fields.get("body-html")),
        headers=_first_wins(headers),
        message_id=fields.get("Message-Id") or _header(headers, "Message-Id"),
        in_reply_to=_split_ids(fields.get("In-Reply-To") or _header(headers, "In-Reply-To")),
        references=_split_ids(fields.get("References") or _header(headers, "References")),
    )


def _split_ids(value) -> list[str]:
    return [part for part in str(value).replace(",", " ").split() if part] if value else []


def _addresses(*values) -> list[str]:
    return [a for _, a in getaddresses([v for v in values if isinstance(v, str) and v]) if a]


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name.lower()), None)


def _first_wins(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Header pairs as the dict ``message_from_parts`` takes (the first value wins)."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in headers:
        if name.lower() not in seen:
            seen.add(name.lower())
            out[name] = value
    return out


# --- Postmark -----------------------------------------------------------------------------


def verify_postmark(username: str | None, password: str | None) -> None:
    s = settings.get()
    user_ok = hmac.compare_digest(
        (username or "").encode("utf-8", "replace"), s.POSTMARK_WEBHOOK_USER.encode("utf-8")
    )
    password_ok = hmac.compare_digest(
        (password or "").encode("utf-8", "replace"), s.POSTMARK_WEBHOOK_PASSWORD.encode("utf-8")
    )
    if username is None or password is None or not (user_ok and password_ok):
        raise Rejected(401, "unauthorized", "basic auth required")


_OPTIONAL_TEXT = (
    "To",
    "Cc",
    "Subject",
    "MessageID",
    "TextBody",
    "HtmlBody",
    "StrippedTextReply",
    "Date",
    "OriginalRecipient",
    "ReplyTo",
    "MailboxHash",
    "Tag",
)


def normalise_postmark(body: bytes) -> Normalised:
    try:
        text = body.decode("utf-8")
    except ValueError:
        raise Rejected(400, "malformed", "body is not JSON") from None
    data = load_json(text, "body")
    if not isinstance(data, dict):
        raise Rejected(400, "malformed", "body must be a JSON object")
    if data.get("RecordType") == "Bounce":
        return normalise_postmark_bounce(data, text)
    sender = data.get("From")
    if not isinstance(sender, str) or not sender.strip():
        raise Rejected(400, "malformed", "From is required")
    for name in _OPTIONAL_TEXT:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise Rejected(400, "malformed", f"{name} must be a string")
    for name in ("ToFull", "CcFull"):
        items = data.get(name)
        if items is not None and not (
            isinstance(items, list)
            and all(isinstance(i, dict) and isinstance(i.get("Email", ""), str) for i in items)
        ):
            raise Rejected(400, "malformed", f"{name} must be a list of objects")
    for name in ("Headers", "ToFull", "CcFull", "Attachments"):
        items, most = data.get(name), HEADERS_MAX if name == "Headers" else MIME_MAX_PARTS
        if isinstance(items, list) and len(items) > most:
            raise Rejected(400, "too_many_parts", f"more than {most} entries in {name}")
    headers = data.get("Headers")
    if headers is not None and not (
        isinstance(headers, list)
        and all(
            isinstance(h, dict) and all(isinstance(h.get(k), str) for k in ("Name", "Value"))
            for h in headers
        )
    ):
        raise Rejected(400, "malformed", "Headers must be a list of {Name, Value}")
    recipient = data.get("To") or ", ".join(i.get("Email", "") for i in data.get("ToFull") or [])
    if not recipient:
        raise Rejected(400, "malformed", "To or ToFull is required")
    return Normalised(
        provider="postmark",
        message_key=message_key("postmark", data.get("MessageID"), text),
        raw_payload=text,
        sender=address_of(sender),
        recipient=clean(recipient, RECIPIENT_MAX),
        subject=clean(data.get("Subject") or "", SUBJECT_MAX),
        **_decoded(_postmark_message, data),
    )


def _postmark_message(data: dict) -> reply_parse.Message:
    headers = [(str(h["Name"]), str(h["Value"])) for h in data.get("Headers") or []]
    full = [
        item.get("Email")
        for key in ("ToFull", "CcFull")
        for item in data.get(key) or []
        if isinstance(item, dict) and item.get("Email")
    ]
    recipients = _addresses(data.get("To"), data.get("Cc"), data.get("OriginalRecipient"))
    return reply_parse.message_from_parts(
        subject=data.get("Subject") or "",
        sender=data.get("From") or "",
        recipients=list(dict.fromkeys(recipients + full)),
        text=_cap(data.get("TextBody") or data.get("StrippedTextReply")),
        html=_cap(data.get("HtmlBody")),
        headers=_first_wins(headers),
        message_id=_header(headers, "Message-ID") or data.get("MessageID"),
        in_reply_to=_split_ids(_header(headers, "In-Reply-To")),
        references=_split_ids(_header(headers, "References")),
    )


# --- provider bounce events --------------------------------------------------------------
#
# Postmark posts its bounce webhook (``RecordType: Bounce``) to the same URL with the same
# basic auth; Mailgun posts its event webhooks (``failed`` events) as JSON with the
# signature inside (``/webhooks/inbound/mailgun/events``). Both become a ``Message``
# whose ``report`` carries the failed address, the original Message-ID (Mailgun) and the
# provider's verdict, so processing handles them like a delivery status notification.

POSTMARK_PERMANENT = ("HardBounce", "BadEmailAddress", "ManuallyDeactivated")
POSTMARK_BOUNCE_KINDS = POSTMARK_PERMANENT + (
    "Transient", "SoftBounce", "DnsError", "AutoResponder", "Unknown", "Blocked",
    "SMTPApiError", "InboxFull", "AddressChange", "ChallengeVerification", "SpamNotification",
    "SpamComplaint", "OpenRelayTest", "VirusNotification", "Subscribe", "Unsubscribe",
    "DMARCPolicy", "TemplateRenderingFailed", "ManuallyDeactivated",
)  # fmt: skip


def _bounce_message(source: str, recipient: str, report: dict, text: str) -> reply_parse.Message:
    return reply_parse.message_from_parts(
        subject=f"Zustellfehler ({source})",
        sender=f"{source} <bounces@{source}.invalid>",
        recipients=[],
        text=_cap(text),
        headers={"Auto-Submitted": "auto-replied", "X-Psymatch-Event": f"{source}-bounce"},
        report={"recipients": [recipient.strip().lower()], **report},
    )


def normalise_postmark_bounce(data: dict, text: str) -> Normalised:
    recipient, kind = data.get("Email"), data.get("Type")
    if not isinstance(recipient, str) or "@" not in recipient:
        raise Rejected(400, "malformed", "Email is required in a bounce")
    if kind not in POSTMARK_BOUNCE_KINDS:
        raise Rejected(400, "malformed", f"unknown bounce Type {kind!r}")
    for name in ("Description", "Details", "ID", "MessageID"):
        if data.get(name) is not None and not isinstance(data[name], str | int):
            raise Rejected(400, "malformed", f"{name} must be a string")
    details = clean(data.get("Details") or data.get("Description") or "", 500)
    report = {
        "permanent": kind in POSTMARK_PERMANENT,
        "status": kind,
        "diagnostic": details,
        "message_ids": [],
    }
    words = f"{kind}: {data.get('Description') or ''}\n{data.get('Details') or ''}"
    return Normalised(
        provider="postmark",
        message_key=message_key("postmark-bounce", str(data.get("ID") or ""), text),
        raw_payload=text,
        sender=None,
        recipient=clean(recipient, RECIPIENT_MAX),
        subject=clean(f"Zustellfehler: {kind}", SUBJECT_MAX),
        **_decoded(_bounce_message, "postmark", recipient, report, words),
    )


def normalise_mailgun_event(body: bytes) -> tuple[Normalised, str]:
    """A Mailgun event webhook (JSON); returns the delivery and its token (verified)."""
    try:
        text = body.decode("utf-8")
    except ValueError:
        raise Rejected(400, "malformed", "body is not JSON") from None
    data = load_json(text, "body")
    if not isinstance(data, dict) or not isinstance(data.get("signature"), dict):
        raise Rejected(401, "signature_missing", "signature object required")
    verify_mailgun(data["signature"])
    event = data.get("event-data")
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        raise Rejected(400, "malformed", "event-data with an event is required")
    if event["event"] != "failed":
        raise Rejected(422, "unsupported_event", f"event {event['event']!r} is not handled")
    recipient = event.get("recipient")
    if not isinstance(recipient, str) or "@" not in recipient:
        raise Rejected(400, "malformed", "recipient is required")
    severity = event.get("severity")
    if severity not in ("permanent", "temporary"):
        raise Rejected(400, "malformed", "severity must be permanent or temporary")
    status = event.get("delivery-status") if isinstance(event.get("delivery-status"), dict) else {}
    headers = (
        (event.get("message") or {}).get("headers")
        if isinstance(event.get("message"), dict)
        else None
    )
    message_id = headers.get("message-id") if isinstance(headers, dict) else None
    diagnostic = clean(status.get("message") or status.get("description") or "", 500)
    report = {
        "permanent": severity == "permanent",
        "status": str(status.get("enhanced-code") or status.get("code") or "") or None,
        "diagnostic": diagnostic,
        "message_ids": [f"<{str(message_id).strip('<>')}>"] if message_id else [],
    }
    words = f"{event.get('reason') or ''} {severity}: {diagnostic}"
    token = data["signature"]["token"]
    normalised = Normalised(
        provider="mailgun",
        message_key=message_key("mailgun-event", str(event.get("id") or ""), text),
        raw_payload=text,
        sender=None,
        recipient=clean(recipient, RECIPIENT_MAX),
        subject=clean(f"Zustellfehler: {severity}", SUBJECT_MAX),
        **_decoded(_bounce_message, "mailgun", recipient, report, words),
    )
    return normalised, token


# --- raw RFC 5322 ---------------------------------------------------------------------------


def raw_signature(body: bytes, secret: str | None = None) -> str:
    secret = secret if secret is not None else settings.get().RAW_WEBHOOK_SECRET
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_raw(body: bytes, header: str | None) -> None:
    if not header or not hmac.compare_digest(
        raw_signature(body).encode("ascii"), header.strip().lower().encode("utf-8", "replace")
    ):
        raise Rejected(401, "signature_invalid")


def normalise_raw(body: bytes) -> Normalised:
    if not body.strip():
        raise Rejected(400, "malformed", "empty message")
    try:
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(body)
        sender = headers.get("From")
        recipient = ", ".join(str(v) for v in headers.get_all("To") or [])
        subject = headers.get("Subject")
        message_id = headers.get("Message-ID")
        sender, subject, message_id = (
            None if v is None else str(v) for v in (sender, subject, message_id)
        )
    except Exception:  # the stdlib parser's failures are the sender's problem: 400
        raise Rejected(400, "malformed", "headers not readable") from None
    if not sender or not sender.strip() or headers.defects and not headers.keys():
        raise Rejected(400, "malformed", "From header is required")
    try:
        text = body.decode("utf-8")
        payload = {"rfc822": text} if "\x00" not in text else None
    except UnicodeDecodeError:
        payload = None
    if payload is None:
        payload = {"rfc822_base64": base64.b64encode(body).decode("ascii")}
    return Normalised(
        provider="raw",
        message_key=message_key("mid", message_id, hashlib.sha256(body).hexdigest()),
        raw_payload=json.dumps(payload),
        sender=address_of(sender),
        recipient=clean(recipient, RECIPIENT_MAX),
        subject=clean(subject or "", SUBJECT_MAX),
        **_decoded(_raw_message, body),
    )


def _raw_message(body: bytes) -> reply_parse.Message:
    return reply_parse.message_from_email(parse_mime(body))


# --- single-use Mailgun tokens -------------------------------------------------------------


def replay_marker(token: str) -> tuple[str, str]:
    """``(provider, token hash)`` under which storing remembers a Mailgun token
    (``operations.replies.store_inbound(replay=...)``)."""
    return "mailgun", _sha(token)


def replay_window_s() -> int:
    """How long a token is remembered: twice the accepted timestamp window."""
    return 2 * settings.get().WEBHOOK_TIMESTAMP_TOLERANCE_S
