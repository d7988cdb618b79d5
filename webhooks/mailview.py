"""Reading the demo mail sink's Maildir (``var/mail``, see ``psymatch.mailsink``).

Read-only helpers behind the ``/dev/mail`` pages: list the messages newest
first and show one message's text (and HTML) part, decoded.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import mailbox
import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlparse

_KEY = re.compile(r"^[A-Za-z0-9._,=-]{1,200}$")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class MailSummary:
    key: str
    subject: str
    to: str
    sender: str
    date: dt.datetime | None  # the Date header (aware), or delivery time (UTC)


@dataclass(frozen=True)
class MailDetail(MailSummary):
    text: str = ""
    html: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def is_local_smtp(url: str) -> bool:
    """True when ``SMTP_URL`` points at this machine (the demo sink)."""
    host = (urlparse(url).hostname or "").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def _open(maildir: Path) -> mailbox.Maildir | None:
    if not (maildir / "cur").is_dir() or not (maildir / "new").is_dir():
        return None
    return mailbox.Maildir(str(maildir), factory=None, create=False)


def _parse(box: mailbox.Maildir, key: str):
    raw = box.get_bytes(key)
    delivered = box.get_message(key).get_date()
    return email.message_from_bytes(raw, policy=email.policy.default), delivered


def _date(message, delivered: float) -> dt.datetime:
    try:
        parsed = parsedate_to_datetime(message["Date"]) if message["Date"] else None
    except (TypeError, ValueError):
        parsed = None
    if parsed is not None and parsed.tzinfo is not None:
        return parsed
    return dt.datetime.fromtimestamp(delivered, dt.UTC)


def _summary(key: str, message, delivered: float) -> MailSummary:
    return MailSummary(
        key=key,
        subject=str(message["Subject"] or "(kein Betreff)"),
        to=str(message["To"] or ""),
        sender=str(message["From"] or ""),
        date=_date(message, delivered),
    )


def list_messages(maildir: Path, limit: int = 500) -> list[MailSummary]:
    """Summaries of the newest ``limit`` messages, newest first."""
    box = _open(maildir)
    if box is None:
        return []
    found = []
    for key in box.iterkeys():
        message, delivered = _parse(box, key)
        found.append(_summary(key, message, delivered))
    found.sort(key=lambda m: (m.date, m.key), reverse=True)
    return found[:limit]


def read_message(maildir: Path, key: str) -> MailDetail | None:
    """One message by its Maildir key, or None for an unknown or malformed key."""
    box = _open(maildir)
    if box is None or not _KEY.match(key or ""):
        return None
    try:
        message, delivered = _parse(box, key)
    except KeyError:
        return None
    summary = _summary(key, message, delivered)
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    return MailDetail(
        **vars(summary),
        text=text_part.get_content() if text_part is not None else "",
        html=html_part.get_content() if html_part is not None else None,
        headers=[(name, str(value)) for name, value in message.items()],
    )
