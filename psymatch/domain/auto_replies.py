"""Automatic replies to an inquiry: bounces and out-of-office notes (pure; domain §0 point 12).

``bounce_of(message)``
    A delivery status notification, recognised from the structured report
    (``multipart/report`` / ``message/delivery-status``, or a provider's bounce event
    decoded into ``Message.report`` by ``webhooks/providers.py``) or from a mailer
    daemon's German or English text. ``permanent`` only for a permanent failure (status
    5.x.x, ``Action: failed``, a hard bounce, "user unknown", "existiert nicht" ...); a
    full mailbox or a delay is temporary: the address stays valid. It names the failed
    addresses and the Message-IDs of the original mail, which is how the operation finds
    the Email and the Therapeutenanfrage it refers to.
``absence_of(message, reference)``
    An out-of-office reply (Auto-Submitted / X-Autoreply headers, subject
    "Abwesenheitsnotiz" / "Out of Office" / "Automatische Antwort", or the body's
    wording) and its return date, German or English ("bis einschließlich 12.01.",
    "ab dem 5. Januar wieder", "back on January 5th", "returning 2027-01-05"). A date
    without a year takes the year that puts it closest after ``reference`` (the day the
    reply was written). ``evidence`` holds the words the date was read from.
``follow_up_day(day, bundesland)``
    The working day after ``day`` (weekends and German public holidays skipped).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from psymatch.domain.slots import is_callable_day

# --- bounces ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bounce:
    permanent: bool
    recipients: tuple[str, ...]  # the addresses that failed (lower case)
    message_ids: tuple[str, ...]  # Message-IDs of the original mail, ``<...>``
    status: str | None  # enhanced status code, e.g. "5.1.1"
    diagnostic: str | None  # what the receiving server said (shortened)

    def as_dict(self) -> dict:
        return {
            "permanent": self.permanent,
            "recipients": list(self.recipients),
            "message_ids": list(self.message_ids),
            "status": self.status,
            "diagnostic": self.diagnostic,
        }


_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster@|mail delivery (?:subsystem|system)", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver(?:ed|able)|unzustellbar|nicht zustellbar|returned mail|"
    r"mail delivery failed|delivery status notification|delivery failure|failure notice|"
    r"zustellung fehlgeschlagen|fehlgeschlagene zustellung|"
    r"unzustellbare nachricht|non[- ]?delivery|nicht übermittelt|delivery has failed",
    re.I,
)
_STATUS_CODE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_REPLY = re.compile(r"(?<![\d.])(5[0-5]\d|4[0-5]\d)(?=[ -]\S)")
_PERMANENT_TEXT = re.compile(
    r"user unknown|unknown user|no such user|user not found|recipient not found|"
    r"mailbox (?:unavailable|not found|does not exist)|address rejected|"
    r"does not exist|doesn't exist|no longer (?:exists|in use|active)|"
    r"invalid (?:recipient|address)|"
    r"unknown (?:recipient|address)|permanent(?:ly)? (?:error|failure|failed)|"
    r"account (?:has been )?(?:disabled|deleted)|"
    r"existiert nicht|gibt es nicht|unbekannt(?:er)? (?:empfänger|benutzer|adresse)|"
    r"empfänger(?:adresse)? (?:wurde )?nicht gefunden|adresse (?:ist )?ungültig|"
    r"dauerhaft(?:er)? fehl|konnte nicht zugestellt werden|could not be delivered|"
    r"wasn't delivered|was not delivered|delivery to the following recipient.{0,20}failed",
    re.I,
)
_TEMPORARY_TEXT = re.compile(
    r"mailbox (?:is )?full|over quota|quota exceeded|postfach (?:ist )?voll|speicher.{0,20}voll|"
    r"delayed|verzögert|will (?:retry|continue trying|try again)|"
    r"(?:wird|werden) (?:es )?(?:weiterhin|erneut|noch) (?:versucht|versuchen)|"
    r"not yet been delivered|noch nicht zugestellt|temporar|vorübergehend",
    re.I,
)
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.I)
_REPORT_RECIPIENT = re.compile(
    r"^\s*(?:final|original)-recipient:\s*(?:rfc822;)?\s*<?([^\s<>;]+@[^\s<>;]+)>?", re.I | re.M
)
_ORIGINAL_MID = re.compile(r"^\s*>?\s*message-id:\s*(<[^<>\s]+>)", re.I | re.M)
_ACTION = re.compile(r"^\s*action:\s*(\w+)", re.I | re.M)
_DIAGNOSTIC = re.compile(r"^\s*diagnostic-code:\s*(?:smtp;)?\s*(.+)$", re.I | re.M)


def _own_text(text: str) -> str:
    """The daemon's own words: up to the attached original (headers or body)."""
    cut = re.search(
        r"^\s*(?:-{2,}.{0,40}(?:original message|ursprüngliche nachricht|below this line|"
        r"headers? of the original|kopf der ursprünglichen).*|"
        r"original message headers:?|received: from .*)$",
        text,
        re.I | re.M,
    )
    return text[: cut.start()] if cut else text


def bounce_of(message) -> Bounce | None:
    """The delivery failure a message reports, or None when it is no bounce."""
    report = dict(message.report or {})
    content_type = (message.header("Content-Type") or "").lower()
    subject = message.subject or ""
    text = message.text or ""
    is_report = bool(report) or (
        "multipart/report" in content_type and "delivery-status" in content_type
    )
    looks = (
        is_report
        or _BOUNCE_SENDER.search(message.sender or "") is not None
        or _BOUNCE_SUBJECT.search(subject) is not None
    )
    if not looks:
        return None
    own = _own_text(text)
    recipients = [a.lower() for a in report.get("recipients") or []]
    recipients += [a.lower() for a in _REPORT_RECIPIENT.findall(text)]
    if not recipients:
        recipients = [
            a.lower() for a in _ADDRESS.findall(own) if not _BOUNCE_SENDER.search(a) and "@" in a
        ]
    ids = list(report.get("message_ids") or [])
    ids += _ORIGINAL_MID.findall(text)
    ids += [*message.in_reply_to, *message.references]
    status = report.get("status")
    if not status:
        found = _STATUS_CODE.search(own) or _STATUS_CODE.search(text)
        status = ".".join(found.groups()) if found else None
    action = (report.get("action") or "").lower()
    if not action:
        found = _ACTION.search(text)
        action = found.group(1).lower() if found else ""
    diagnostic = report.get("diagnostic")
    if not diagnostic:
        found = _DIAGNOSTIC.search(text)
        diagnostic = found.group(1).strip() if found else None
    words = f"{diagnostic or ''}\n{own}"
    if report.get("permanent") is not None:
        permanent = bool(report["permanent"])
    elif _TEMPORARY_TEXT.search(words) or (status or "").startswith("4") or action == "delayed":
        permanent = False
    elif (status or "").startswith("5") or action == "failed":
        permanent = True
    else:
        smtp = _SMTP_REPLY.search(words)
        permanent = bool((smtp and smtp.group(1).startswith("5")) or _PERMANENT_TEXT.search(words))
    if status and status.startswith("5.2.2"):  # mailbox full: the address itself is fine
        permanent = False
    if not (is_report or recipients or ids or permanent):
        return None  # a "Returned mail" subject alone from a person: not a report
    return Bounce(
        permanent=permanent,
        recipients=tuple(dict.fromkeys(recipients)),
        message_ids=tuple(dict.fromkeys(_bracketed(i) for i in ids if i)),
        status=status,
        diagnostic=(diagnostic or None) and diagnostic[:500],
    )


def _bracketed(message_id: str) -> str:
    value = message_id.strip()
    return value if value.startswith("<") else f"<{value.strip('<>')}>"


# --- out of office ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Absence:
    return_date: dt.date | None  # the date the reply names (last day away or first day back)
    evidence: str | None  # the words it was read from

    def as_dict(self) -> dict:
        day = self.return_date.isoformat() if self.return_date else None
        return {"return_date": day, "evidence": self.evidence}


_ABSENCE_SUBJECT = re.compile(
    r"abwesenheit|abwesend|automatische antwort|automatic reply|auto[- ]?reply|autoreply|"
    r"out of (?:the )?office|\booo\b|urlaub|nicht im büro|nicht in der praxis|away from",
    re.I,
)
_ABSENCE_BODY = re.compile(
    r"abwesenheitsnotiz|automatische antwort|\bauto(?:matic)?[- ]?reply\b|out of (?:the )?office|"
    r"(?:bin|sind) (?:ich |wir )?(?:\w+ ){0,4}(?:nicht im büro|nicht in der praxis|abwesend|"
    r"nicht erreichbar|im urlaub|in urlaub)|praxis(?:urlaub| ist .{0,30}geschlossen)|"
    r"(?:i am|i'm|we are) (?:currently )?(?:out of|away|on (?:leave|vacation|holiday))|"
    r"(?:e-?mails|nachrichten) werden .{0,40}(?:nicht|nur eingeschränkt) (?:gelesen|bearbeitet)",
    re.I,
)

_MONTHS = {
    "januar": 1, "jänner": 1, "jan": 1, "january": 1, "februar": 2, "feb": 2, "february": 2,
    "märz": 3, "maerz": 3, "mär": 3, "mar": 3, "march": 3, "april": 4, "apr": 4, "mai": 5,
    "may": 5, "juni": 6, "jun": 6, "june": 6, "juli": 7, "jul": 7, "july": 7, "august": 8,
    "aug": 8, "september": 9, "sept": 9, "sep": 9, "oktober": 10, "okt": 10, "october": 10,
    "oct": 10, "november": 11, "nov": 11, "dezember": 12, "dez": 12, "december": 12, "dec": 12,
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th)?"
_DATE = (
    r"(?P<iso>\d{4}-\d{2}-\d{2})"
    r"|(?P<dd>\d{1,2})\.\s?(?P<mm>\d{1,2})\.(?:\s?(?P<yy>\d{4}|\d{2})\b)?"
    rf"|(?P<d1>\d{{1,2}})(?:\.|{_ORD})?\s+(?:of\s+)?(?P<m1>{_MONTH})\.?(?:,?\s+(?P<y1>\d{{4}}))?\b"
    rf"|(?P<m2>{_MONTH})\.?\s+(?P<d2>\d{{1,2}}){_ORD}\b(?:,?\s+(?P<y2>\d{{4}}))?"
)
_DATE_RE = re.compile(_DATE, re.I)
_ANY_DATE = re.sub(r"\(\?P<\w+>", "(?:", _DATE)  # the same without group names
# A date that names the return ("wieder ab", "back on") wins over one that ends the absence.
_BACK = re.compile(
    r"(?:(?:ab|from|on|am|seit)\s+(?:dem\s+|den\s+)?(?:\w+,?\s+(?:den\s+)?)?(?:" + _ANY_DATE + r"))"
    r"(?=[^.\n]{0,60}\b(?:wieder|zurück|erreichbar|im büro|in der praxis|back|return))"
    r"|(?:wieder|zurück|erreichbar|back|returning|return|im büro|in der praxis|in the office)"
    r"\s+(?:\w+\s+){0,4}?(?:ab|on|am|from|by)?\s*(?:dem\s+|den\s+)?(?:\w+,?\s+(?:den\s+)?)?"
    r"(?:" + _ANY_DATE + r")",
    re.I,
)
_UNTIL = re.compile(
    r"\b(?:bis|until|till|through|thru|to)\s+(?:einschließlich|einschl\.|inkl\.|incl\.|"
    r"zum|zur|and including|including)?\s*(?:\w+,?\s+(?:den\s+)?)?(?:" + _ANY_DATE + r")",
    re.I,
)


def _date_of(words: str, reference: dt.date) -> dt.date | None:
    dates = list(_DATE_RE.finditer(words))
    if not dates:
        return None
    g = dates[-1].groupdict()
    try:
        if g.get("iso"):
            return dt.date.fromisoformat(g["iso"])
        if g.get("dd"):
            day, month, year = int(g["dd"]), int(g["mm"]), g.get("yy")
        elif g.get("d1"):
            day, month, year = int(g["d1"]), _MONTHS[g["m1"].lower()], g.get("y1")
        elif g.get("d2"):
            day, month, year = int(g["d2"]), _MONTHS[g["m2"].lower()], g.get("y2")
        else:
            return None
        if year:
            value = int(year)
            return dt.date(value + 2000 if value < 100 else value, month, day)
        candidate = dt.date(reference.year, month, day)
        if candidate < reference - dt.timedelta(days=14):  # "bis 12.01." written in December
            candidate = dt.date(reference.year + 1, month, day)
        return candidate
    except (ValueError, KeyError):
        return None


def return_date(text: str, reference: dt.date) -> tuple[dt.date | None, str | None]:
    """The date an out-of-office text names for the return, and the words; (None, None)
    when there is none or it is not plausible (in the past, more than a year ahead)."""
    for pattern in (_BACK, _UNTIL):
        found = []
        for match in pattern.finditer(text or ""):
            day = _date_of(match.group(0), reference)
            plausible = day is not None and (
                reference - dt.timedelta(days=1) <= day <= reference + dt.timedelta(days=366)
            )
            if plausible:
                found.append((day, match.group(0).strip()))
        if found:
            return max(found)  # "vom 20.12. bis 05.01." -> the later one
    return None, None


def is_absence(message, auto_reason: str | None) -> bool:
    """Whether an automatic reply is an out-of-office note (not a bounce or list mail)."""
    if _ABSENCE_SUBJECT.search(message.subject or ""):
        return True
    return _ABSENCE_BODY.search((message.text or "")[:4000]) is not None


def absence_of(message, reference: dt.date, auto_reason: str | None = None) -> Absence | None:
    """The out-of-office note of an automatic reply with its return date, else None."""
    if not is_absence(message, auto_reason):
        return None
    body = (message.text or "")[:8000]
    body = "\n".join(ln for ln in body.split("\n") if not ln.lstrip().startswith(">"))
    day, words = return_date(f"{message.subject or ''}\n{body}", reference)
    return Absence(day, words)


def follow_up_day(day: dt.date, bundesland_code: str | None = None) -> dt.date:
    """The first working day after ``day``: no weekend, no German public holiday."""
    candidate = day + dt.timedelta(days=1)
    while not is_callable_day(candidate, bundesland_code):
        candidate += dt.timedelta(days=1)
    return candidate
