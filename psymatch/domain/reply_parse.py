"""Understanding a therapist's email reply (pure: no database, no network).

Pipeline::

    raw bytes / provider fields -> Message            (message_from_bytes / message_from_parts)
    Message -> Anfrage id and its proof              (locate_anfrage / identify_anfrage)
    Message -> auto-reply?                           (is_auto_reply)
    text -> text without quoted original/signature   (strip_quoted)
    text + patient ids in bundle order -> Decision   (decide / understand)

``decide`` reads two things and combines them:

1. The structured answer form (``psymatch.domain.answer_form``) anywhere in the
   text, quoted or not: one line per patient, boxes ticked or options deleted.
2. The free text written by the therapist (quoted original, signature and form
   lines removed), split into sentences and clauses. Each clause may name
   patients (ids "Patient 123", "#123", "P123", "Nr. 123"; positions "Nummer 2",
   "den ersten", "die beiden ersten"; "alle", "beide", "die anderen") and carries
   a polarity: acceptance, refusal (with a reason) or hedge ("vielleicht",
   "rufen Sie mich an", questions ...).

The result is automatic only when every patient of the bundle gets exactly one
outcome and nothing contradicts it; anything else is ``review=True`` with the
reason. A wrong acceptance is far worse than a review, so acceptances need an
explicit patient reference (or a one-patient bundle) and no hedge anywhere.

Refusals without a stated reason ("leider nicht", "nein") are recorded as
``abgelehnt_sonstiges``; capacity words give ``abgelehnt_Kapazitaet``; "nicht
geeignet", "passt nicht zu meinem Schwerpunkt" ... give ``abgelehnt_nicht_geeignet``.
References to a patient by gender or description ("die Frau", "der junge Mann")
cannot be resolved here (the bundle data is not part of this interface) and go to
review unless the bundle has a single patient.
"""

from __future__ import annotations

import difflib
import email
import email.message
import email.policy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import getaddresses
from html.parser import HTMLParser

from psymatch import mail_policy
from psymatch.domain import answer_form, vocab
from psymatch.domain.tokens import find_reply_anfrage, parse_legacy_message_id, parse_message_id

ANGENOMMEN = vocab.ANGENOMMEN
KAPAZITAET = vocab.ABGELEHNT_KAPAZITAET
NICHT_GEEIGNET = vocab.ABGELEHNT_NICHT_GEEIGNET
SONSTIGES = vocab.ABGELEHNT_SONSTIGES
OUTCOMES = vocab.THERAPEUTENANTWORTEN


# --- messages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A reply, normalised from raw RFC 5322 bytes or from provider fields."""

    subject: str
    sender: str
    recipients: list[str]
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    auto_submitted: str | None
    text: str  # the text/plain part, else text derived from the HTML part
    headers: dict[str, str] = field(default_factory=dict)
    # A delivery report's fields (``delivery_report``; provider bounce events): failed
    # ``recipients``, original ``message_ids``, ``status``, ``action``, ``diagnostic``,
    # ``permanent`` (a provider's own verdict). Empty for every other message.
    report: dict = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


_MSGID = re.compile(r"<[^<>\s]+>")
_RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to", "x-forwarded-to")


def _message_ids(value: str | Iterable[str] | None) -> list[str]:
    if not value:
        return []
    values = [value] if isinstance(value, str) else list(value)
    found: list[str] = []
    for item in values:
        ids = _MSGID.findall(item or "")
        if not ids and item and item.strip():
            ids = [f"<{item.strip().strip('<>')}>"]
        found.extend(ids)
    return found


MAX_QUOTE_DEPTH = 20  # ``>`` marks per line at most: 10,000 nested blockquotes stay linear


class _HtmlText(HTMLParser):
    """HTML to plain text; blockquotes become ``>`` quoted lines."""

    BLOCK = {
        "p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5",
        "h6", "pre", "hr", "blockquote", "section", "article", "header", "footer", "dd", "dt",
    }  # fmt: skip
    SKIP = {"style", "script", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[list] = [[0, ""]]
        self.depth = 0
        self.skip = 0
        self.pre = 0

    def _newline(self):
        if self.lines[-1][1].strip():
            self.lines.append([self.depth, ""])
        else:
            self.lines[-1] = [self.depth, ""]

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "br":
            self.lines.append([self.depth, ""])
        elif tag in self.BLOCK:
            if tag == "blockquote":
                self.depth += 1
            if tag == "pre":
                self.pre += 1
            self._newline()
        elif tag == "td" and self.lines[-1][1].strip():
            self.lines[-1][1] += " "

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK and tag != "br":
            if tag == "blockquote":
                self.depth = max(0, self.depth - 1)
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._newline()

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            parts = data.split("\n")
            self.lines[-1][1] += parts[0]
            for part in parts[1:]:
                self.lines.append([self.depth, part])
            return
        text = re.sub(r"\s+", " ", data)
        if not self.lines[-1][1]:
            text = text.lstrip()
        self.lines[-1][1] += text

    def text(self) -> str:
        out = []
        for depth, line in self.lines:
            line = line.replace("\xa0", " ").rstrip()
            quote = "> " * min(depth, MAX_QUOTE_DEPTH)  # deeper levels add no meaning
            out.append((quote + line).rstrip() if depth else line)
        text = "\n".join(out)
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html or "")
    parser.close()
    return parser.text()


def _decode_part(part) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeDecodeError, AssertionError, KeyError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")


def message_from_bytes(raw: bytes) -> Message:
    """A raw RFC 5322 message (multipart, HTML-only, any transfer encoding)."""
    return message_from_email(email.message_from_bytes(raw, policy=mail_policy.DEFAULT))


def message_from_email(msg: email.message.EmailMessage) -> Message:
    """A message parsed by the stdlib (``policy.default``), e.g. by a parser that bounds
    the part count and nesting depth (``webhooks.providers.parse_mime``)."""
    headers: dict[str, str] = {}
    for name, value in msg.items():
        if name not in headers:
            headers[name] = str(value)
    text = ""
    plain = msg.get_body(preferencelist=("plain",))
    if plain is not None:
        text = _decode_part(plain)
    if not text.strip():
        html = msg.get_body(preferencelist=("html",))
        if html is not None:
            text = html_to_text(_decode_part(html))
    if not text.strip() and not msg.is_multipart() and msg.get_content_maintype() == "text":
        text = _decode_part(msg)
    recipients = []
    for name in _RECIPIENT_HEADERS:
        for value in msg.get_all(name) or []:
            recipients.extend(addr for _, addr in getaddresses([str(value)]) if addr)
    report = delivery_report(msg)
    return Message(
        subject=str(msg.get("Subject", "") or ""),
        sender=str(msg.get("From", "") or ""),
        recipients=recipients,
        message_id=(_message_ids(str(msg.get("Message-ID", "") or "")) or [None])[0],
        in_reply_to=_message_ids([str(v) for v in msg.get_all("In-Reply-To") or []]),
        references=_message_ids([str(v) for v in msg.get_all("References") or []]),
        auto_submitted=str(msg["Auto-Submitted"]).strip() if msg["Auto-Submitted"] else None,
        text=text.replace("\r\n", "\n"),
        headers=headers,
        report=report,
    )


def delivery_report(msg: email.message.EmailMessage) -> dict:
    """The fields of a ``multipart/report`` delivery status notification (RFC 3464): the
    per-recipient blocks of its ``message/delivery-status`` part and the Message-ID of
    the returned original (``message/rfc822`` or ``text/rfc822-headers``). Empty when
    the message is no such report."""
    if msg.get_content_type() != "multipart/report":
        return {}
    report: dict = {"recipients": [], "message_ids": []}
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in part.get_payload() or []:
                if not hasattr(block, "get"):
                    continue
                for name in ("Final-Recipient", "Original-Recipient"):
                    value = str(block.get(name) or "")
                    if value:
                        address = value.split(";", 1)[-1].strip().strip("<>").lower()
                        if "@" in address and address not in report["recipients"]:
                            report["recipients"].append(address)
                for name, key in (("Action", "action"), ("Status", "status")):
                    if block.get(name) and key not in report:
                        report[key] = str(block.get(name)).strip().split()[0].lower()
                if block.get("Diagnostic-Code") and "diagnostic" not in report:
                    value = str(block.get("Diagnostic-Code"))
                    report["diagnostic"] = value.split(";", 1)[-1].strip()[:500]
        elif kind in ("message/rfc822", "text/rfc822-headers"):
            if kind == "message/rfc822":
                payload = part.get_payload()
                original = payload[0] if isinstance(payload, list) and payload else None
                value = original.get("Message-ID") if original is not None else None
            else:
                found = re.search(r"^message-id:\s*(\S+)", _decode_part(part), re.I | re.M)
                value = found.group(1) if found else None
            report["message_ids"].extend(_message_ids(str(value)) if value else [])
    return report


def message_from_parts(
    *,
    subject: str | None,
    sender: str | None,
    recipients: Iterable[str] | str | None,
    text: str | None = None,
    html: str | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
    in_reply_to: Iterable[str] | str = (),
    references: Iterable[str] | str = (),
    report: dict | None = None,
) -> Message:
    """A Message from provider payload fields (Mailgun, Postmark ...)."""
    headers = {str(k): str(v) for k, v in (headers or {}).items()}
    lower = {k.lower(): v for k, v in headers.items()}
    if isinstance(recipients, str):
        recipients = [recipients]
    addresses = [addr for _, addr in getaddresses(list(recipients or [])) if addr]
    for name in _RECIPIENT_HEADERS:
        if name in lower:
            addresses.extend(a for _, a in getaddresses([lower[name]]) if a and a not in addresses)
    body = text or ""
    if not body.strip() and html:
        body = html_to_text(html)
    irt = _message_ids(in_reply_to) or _message_ids(lower.get("in-reply-to"))
    refs = _message_ids(references) or _message_ids(lower.get("references"))
    mid = _message_ids(message_id or lower.get("message-id"))
    auto = lower.get("auto-submitted")
    return Message(
        subject=subject or lower.get("subject", ""),
        sender=sender or lower.get("from", ""),
        recipients=addresses,
        message_id=mid[0] if mid else None,
        in_reply_to=irt,
        references=refs,
        auto_submitted=auto.strip() if auto else None,
        text=body.replace("\r\n", "\n"),
        headers=headers,
        report=dict(report or {}),
    )


# --- which Anfrage ------------------------------------------------------------------------

_SUBJECT_REF = re.compile(r"\bref\.?\s*:?\s*a\s?([1-9][0-9]{0,17})\b", re.IGNORECASE)
_SUBJECT_BARE = re.compile(r"(?<![\w-])A([1-9][0-9]{0,17})\b")

# How a reply named its Anfrage (``AnfrageRef.via``); only the first two are proof.
VIA_REPLY_ADDRESS = "antwortadresse"
VIA_MESSAGE_ID = "message_id"
VIA_UNSIGNED_MESSAGE_ID = "message_id_unsigniert"
VIA_SUBJECT = "betreff"
SIGNED_VIA = (VIA_REPLY_ADDRESS, VIA_MESSAGE_ID)


@dataclass(frozen=True)
class AnfrageRef:
    """The Anfrage a reply names, and how: ``signed`` only for a reply address or a
    Message-ID psymatch signed (a subject or an unsigned Message-ID can be guessed)."""

    anfrage_id: int | None
    via: str | None

    @property
    def signed(self) -> bool:
        return self.anfrage_id is not None and self.via in SIGNED_VIA


def locate_anfrage(message: Message) -> AnfrageRef:
    """The Anfrage a reply answers: the signed reply address among the recipients, else a
    signed Message-ID of ours in In-Reply-To/References, else an unsigned one of earlier
    versions, else "Ref: A123" in the subject."""
    values = list(message.recipients)
    for name in _RECIPIENT_HEADERS:
        value = message.header(name)
        if value:
            values.append(value)
    found = find_reply_anfrage(values)
    if found is not None:
        return AnfrageRef(found, VIA_REPLY_ADDRESS)
    mids = list(message.in_reply_to) + list(reversed(message.references))
    for mid in mids:
        found = parse_message_id(mid)
        if found is not None:
            return AnfrageRef(found, VIA_MESSAGE_ID)
    for mid in mids:
        found = parse_legacy_message_id(mid)
        if found is not None:
            return AnfrageRef(found, VIA_UNSIGNED_MESSAGE_ID)
    subject = message.subject or ""
    ids = {int(m) for m in _SUBJECT_REF.findall(subject)}
    if not ids:
        ids = {int(m) for m in _SUBJECT_BARE.findall(subject)}
    if len(ids) == 1:
        return AnfrageRef(ids.pop(), VIA_SUBJECT)
    return AnfrageRef(None, None)


def identify_anfrage(message: Message) -> int | None:
    """The Anfrage id ``locate_anfrage`` finds, signed or not."""
    return locate_anfrage(message).anfrage_id


# --- auto replies ---------------------------------------------------------------------------

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:(?:AW|RE|WG|FW|Fwd)\s*:\s*)*(automatische antwort|automatic reply|auto[- ]?reply|"
    r"autoreply|abwesenheitsnotiz|abwesenheit|abwesend|out of (?:the )?office|"
    r"ooo\b|urlaubsabwesenheit|nicht im büro|undeliverable|unzustellbar|"
    r"delivery status notification|mail delivery failed|returned mail|"
    r"zustellung fehlgeschlagen|nicht zustellbar)",
    re.IGNORECASE,
)
_AUTO_BODY = re.compile(
    r"abwesenheitsnotiz|automatische antwort|automatisch (?:generiert|erstellt|versendet)|"
    r"automatisch(?:e|er)? (?:e-?mail|nachricht|benachrichtigung)|"
    r"\bauto(?:matic)?[- ]?reply\b|out of (?:the )?office|"
    r"in dringenden fällen wenden sie sich|"
    r"(?:e-?mails|nachrichten) werden (?:in dieser zeit |während meiner abwesenheit )?"
    r"(?:nicht|nur eingeschränkt) (?:gelesen|bearbeitet)|"
    r"(?:bin|sind) (?:ich |wir )?(?:bis (?:einschließlich |zum )?\S+ )?"
    r"(?:nicht im büro|nicht in der praxis|abwesend|nicht erreichbar)",
    re.IGNORECASE,
)


def is_auto_reply(message: Message) -> str | None:
    """Why the message is automatic (out of office, bounce, list mail), or None."""
    auto = (message.auto_submitted or message.header("Auto-Submitted") or "").strip()
    if auto and auto.lower() != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        value = message.header(name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return f"{name}: {value.strip() or 'yes'}"
    precedence = (message.header("Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    suppress = (message.header("X-Auto-Response-Suppress") or "").strip().lower()
    if suppress in ("all", "oof") and _AUTO_SUBJECT.search(message.subject or ""):
        return "out of office (Exchange)"
    content_type = (message.header("Content-Type") or "").lower()
    if "multipart/report" in content_type:
        return "delivery report"
    sender = (message.sender or "").lower()
    if re.search(r"mailer-daemon|postmaster@", sender):
        return "delivery report (mailer-daemon)"
    if (message.header("Return-Path") or "").strip() == "<>":
        return "null return path"
    match = _AUTO_SUBJECT.search(message.subject or "")
    if match:
        return f"subject: {match.group(1)}"
    match = _AUTO_BODY.search(strip_quoted(message.text or "")[:2000])
    if match:
        return f"out of office: {match.group(0)}"
    return None


# --- quoted original and signature ------------------------------------------------------------

# What mail-parser-reply leaves: the inquiry pasted without quoting, mobile signatures,
# a German or English closing formula (the library cuts signatures it recognises only).
_CUT_LINE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        # a separator line without the header block the library looks for
        r"^\s*-{2,}\s*(ursprüngliche nachricht|original message|weitergeleitete nachricht|"
        r"forwarded message|nachricht weitergeleitet)\s*-*\s*$",
        r"^\s*(begin forwarded message|anfang der weitergeleiteten nachricht)\s*:?\s*$",
        r"^\s*wir suchen für .{0,60}(patient|person).{0,80}psychotherapieplatz",
        r"^\s*die patient(in|innen)? .{0,40}im überblick",
        r"^\s*so antworten sie am schnellsten",
        r"^\s*antwort mit einem klick",
        r"^\s*(gesendet|sent) (von|from|mit|with) .{0,60}$",
        r"^\s*von meinem \w+ gesendet\s*$",
        r"^\s*_{10,}\s*$",
    )
]
_SIG_DASHES = re.compile(r"^\s*--\s*$")
_CLOSER = re.compile(
    r"^\s*(mit\s+)?(freundlichen|besten|herzlichen|lieben|kollegialen|vielen|schönen|"
    r"sonnigen|freundliche|beste|herzliche|liebe|viele|kollegiale)\s+(grüßen|grüssen|grüße|"
    r"grüsse|gruß|gruss)\b|^\s*(mfg|lg|vg|bg|gruß|gruss|grüße|grüsse|"
    r"best regards|kind regards|warm regards|regards|best wishes|best|cheers|sincerely|"
    r"yours sincerely|many thanks|thanks|thank you|danke und grüße)\s*[,.!]?\s*$",
    re.IGNORECASE,
)
_CLOSER_LINE_MAX = 60


def _cut_index(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        stripped = line.strip()
        if _SIG_DASHES.match(line) or any(p.search(line) for p in _CUT_LINE):
            return i
        if len(stripped) <= _CLOSER_LINE_MAX and _CLOSER.match(stripped):
            return i
    return len(lines)


_REPLY_PARSER = None


def _reply_parser():
    """``mail-parser-reply``'s parser for German and English mail clients (built once)."""
    global _REPLY_PARSER
    if _REPLY_PARSER is None:
        from mailparser_reply import EmailReplyParser

        _REPLY_PARSER = EmailReplyParser(languages=["de", "en"])
    return _REPLY_PARSER


def strip_quoted(text: str) -> str:
    """The therapist's own words: quoted original, forwarded blocks and signature removed.

    The maintained library ``mail-parser-reply`` splits the mail into its replies (Outlook,
    Gmail, Apple Mail, Thunderbird headers in German and English) and cuts the signature of
    the newest one; psymatch's rules on top only remove what the library does not know:
    ``>`` lines, the inquiry pasted without quoting, "Gesendet von meinem iPhone" and a
    German closing formula. Idempotent: stripping stripped text changes nothing.
    """
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    try:
        replies = _reply_parser().read(text).replies
        own = replies[0].body if replies else text
    except Exception:  # the library failing on odd input must not lose the reply
        own = text
    lines = [ln for ln in own.split("\n") if not ln.lstrip().startswith(">")]
    lines = lines[: _cut_index(lines)]
    return "\n".join(lines).strip()


# --- decisions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    decisions: dict[int, str]  # patient_id -> outcome
    review: bool
    reason: str
    # Why: the therapist's words that decided each outcome (or sent the reply to review).
    evidence: list[str] = field(default_factory=list)
    # Logistics beside the decision (phone windows, proposed dates, contact wishes) and the
    # questions among them: for the Anfrage's notes and the staff's open questions.
    logistics: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    # domain §0.14: patients the reply announces a later answer for (record the others,
    # leave these pending: ``record_response(partial=True)``)
    pending: list[int] = field(default_factory=list)


ACCEPT, REFUSE, HEDGE = "accept", "refuse", "hedge"
_QMARK = "\u2047"  # stands for "?" once sentences are split
ALL, OTHERS, VAGUE = "all", "others", "vague"

_NUMBER_WORDS = {
    "eins": 1, "einen": 1, "erste": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "fuenf": 5,
    "sechs": 6, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
}  # fmt: skip
_ORDINALS = {
    "erst": 1, "zweit": 2, "dritt": 3, "viert": 4, "fünft": 5, "fuenft": 5, "sechst": 6,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
}  # fmt: skip

_PHONE_LINE = re.compile(
    r"\b(tel|telefon|fon|fax|mobil|handy|phone|mobile|cell)\b\.?|\+49|\b0\d{2,5}[\s/-]+\d{2,}"
    r"|\b\d{5}\s+[A-ZÄÖÜ][a-zäöü]+|straße\b|str\.\s*\d|www\.|@|https?://",
    re.IGNORECASE,
)

_PHONE_NUMBER = re.compile(r"(?:\+49|\b0)[\d\s/()-]{5,}\d|\b\d{5}\s+(?=[A-ZÄÖÜ])")

# Patient nouns (German, English), singular and plural, with gender forms.
_PAT = (
    r"(?:patient(?:en|in|innen|\*innen|:innen|_innen|\(in\))?|patients?|pat\.|pt\.?|klient(?:in)?)"
)
_NUM_LIST = r"(\d{1,7}(?:\s*(?:,|\+|&|/|und|and|sowie|u\.|or|oder)\s*\d{1,7})*)"
_REF_NUMBERED = re.compile(
    rf"(?:{_PAT}\s*(?:nr\.?|nummer|no\.?|number|#|id)?\s*:?\s*#?|"
    rf"\b(?:nr\.?|nummer|no\.|number)\s*|#\s*|\bP(?=\d))" + _NUM_LIST,
    re.IGNORECASE,
)
_REF_LINE_START = re.compile(r"^\s*(?:zu\s+)?(\d{1,7})\s*[).:]\s*(?!\d)", re.IGNORECASE)
_REF_SMALL_LIST = re.compile(
    r"^\s*(?:(?:und|and|für|bei|zu)\s+)?(\d(?:\s*(?:,|und|and|\+|&|/|sowie)\s*\d)*)\b"
    r"(?!\s*(?:uhr|jahre|wochen|monate|tage|std|stunden|h\b|x\b|mal\b|[.:]\d))",
    re.IGNORECASE,
)
_REF_FOR_LIST = re.compile(
    r"\b(?:für|bei|zu|for)\s+(\d(?:\s*(?:,|und|and|\+|&|/|sowie)\s*\d)*)\b"
    r"(?!\s*(?:uhr|jahre|wochen|monate|tage|std|stunden|h\b|x\b|mal\b|[.:]\d))",
    re.IGNORECASE,
)
_REF_BARE = re.compile(r"(?<![\d.,:/-])\b(\d{3,7})\b(?![.,:/-]?\d)")
_REF_ORDINAL = re.compile(
    r"\b(?:die|den|der|dem|das|the|zur|zum|nr\.?)?\s*"
    r"(?:(beiden|zwei|two)\s+)?(erst|zweit|dritt|viert|fünft|fuenft|sechst|letzt|"
    r"first|second|third|fourth|fifth|sixth|last)(?:e|en|er|em|es)?\b"
    r"(?:\s+(beiden|zwei|two|drei|three))?",
    re.IGNORECASE,
)
_REF_ORDINAL_LIST = re.compile(
    r"\b(erst|zweit|dritt|viert|fünft|fuenft|sechst|first|second|third|fourth|fifth|sixth)"
    r"(?:en|e|er|em)?\s*(?:,|und|and|sowie|&|\+|oder|or)\s*(?:(?:die|den|der|the)\s+)?"
    r"(erst|zweit|dritt|viert|fünft|fuenft|sechst|letzt|first|second|third|fourth|fifth|sixth|last)"
    r"(?:en|e|er|em|n)?\b",
    re.IGNORECASE,
)
_NOT_PATIENT_AFTER_ORDINAL = re.compile(
    r"^\s*(mal|termin|gespräch|erstgespräch|sitzung|woche|wochen|monat|quartal|jahreshälfte|"
    r"hälfte|halbjahr|januar|februar|märz|april|mai|juni|juli|august|september|oktober|"
    r"november|dezember|time|week|month|quarter|instance|step|schritt|eindruck|anfrage|"
    r"gedanke|platz|rückmeldung)\b",
    re.IGNORECASE,
)
_REF_ALL = re.compile(
    r"\b(?:allen?(?:\s+(?:drei|vier|fünf|fuenf|sechs|zwei|\d))?(?!\s+(?:plätze|termine|"
    r"kapazitäten|stunden|meine|unsere|zeiten|therapieplätze|anderen|übrigen|weiteren|"
    r"verfügbaren|freien|belegt|voll|ausgebucht|gute))|"
    r"beide[nrs]?|sämtliche|all(?:\s+(?:three|four|five|six|of them|patients))?|both(?: of them)?|"
    r"jede[nmr]?\s+(?:der|von)|each of)\b",
    re.IGNORECASE,
)
_REF_NONE = re.compile(
    r"\b(?:kein(?:e|en|er|em)?\s+(?:der|von|ihrer|dieser|davon|aus)\b|keine[rn]?\s+der\b|"
    r"none of|neither|niemand(?:en)?\b|not any of|keine\s+(?:der\s+)?(?:genannten|vorgestellten)|"
    r"keine(?:n|r)?\s+(?:\w+\s+)?(?:ihrer|der)\s+(?:\w+\s+)?" + _PAT + r")",
    re.IGNORECASE,
)
_REF_NOT_ALL = re.compile(r"\bnicht\s+alle\b|\bnot\s+all\b|\bnur\s+(einen|eine|one)\b", re.I)
_REF_OTHERS = re.compile(
    r"\b(?:(?:die|den|der|alle|für die|für alle)\s+)?(?:anderen|übrigen|restlichen|weiteren)\b|"
    r"\bder\s+rest\b|\bden\s+rest\b|\bthe\s+(?:others|rest|other\s+(?:two|three|\w+)|"
    r"remaining)\b|\bother patients\b|\brest\b",
    re.IGNORECASE,
)
_REF_VAGUE = re.compile(
    r"\b(?:die|der|den|dem|the)\s+(?:junge[nr]?\s+|ältere[nr]?\s+|jüngere[nr]?\s+)?"
    r"(?:frau|dame|mann|herrn?|patientin|patienten(?!\s*\d)|patient(?!\s*\d)|"
    r"student(?:in|en)?|woman|man|lady|gentleman|young\s+\w+|older\s+\w+|klientin|klienten)\b"
    r"|\b(?:frau|herrn?)\b(?!\s+(?:dr|kollegin|kollege|[A-ZÄÖÜ]))"
    r"|\b(?:mit|with)\s+(?:der|dem|the)?\s*(?:depression|angst|trauma|ptbs|zwang|essstörung|"
    r"burnout|panik)\w*"
    r"|\b(?:die|den|der)\s+(?:\d{2})[- ]?jährige[nr]?\b",
    re.IGNORECASE,
)
_REF_PRONOUN_SINGLE = re.compile(
    r"\b(?:sie|ihn|ihm|ihr|diese[nr]?|die\s+person|der\s+person|den\s+patienten|"
    r"die\s+patientin|the\s+patient|her|him|this\s+patient)\b",
    re.IGNORECASE,
)

_HEDGE = re.compile(
    r"\b(?:vielleicht|eventuell|evtl|ggf|gegebenenfalls|möglicherweise|unter umständen|"
    r"u\.\s?u\.|sofern|falls|wenn|vorausgesetzt|bräuchte|vorher|zuvor|zunächst|"
    r"(?:ab|im|in|nach|bis)\s+(?:dem\s+)?(?:januar|februar|märz|april|mai|juni|juli|august|"
    r"september|oktober|november|dezember|frühjahr|frühling|sommer|herbst|winter|neuen jahr)|"
    r"nächste[nsr]?\s+(?:jahr|monat|quartal)|später|demnächst|"
    r"nachdenken|denke\s+(?:\w+\s+){0,2}nach|in frage|infrage|käme|kämen|"
    r"bevor|ehe|mehr (?:über|zu|von)|näheres|erfahren|"
    r"gebe\s+(?:ich\s+)?(?:ihnen\s+|euch\s+)?(?:\w+\s+){0,4}?bescheid|rückmeldung folgt|"
    r"voraussetzung|unter der bedingung|je nachdem|mal sehen|mal schauen|"
    r"muss (?:erst|noch) (?:prüfen|schauen|klären|sehen|nachsehen)|prüfe|kläre|überlege|"
    r"rufen sie mich|rufen mich|rufen sie bitte|bitte (?:um )?(?:rückruf|anruf)|rückruf|"
    r"telefonisch (?:besprechen|klären|abstimmen)|melde mich|melden uns|melde ich mich|"
    r"melden wir uns|komme (?:ich )?(?:darauf )?zurück|mehr informationen|weitere informationen|"
    r"nähere informationen|genauere informationen|weitere angaben|mehr angaben|"
    r"rücksprache|nachfrage|unsicher|nicht sicher|weiß (?:ich )?(?:noch )?nicht|"
    r"warteliste|wartezeit|erst (?:im|ab|in)\s+\w+|frühestens|"
    r"maybe|perhaps|possibly|might|if\b|provided|depending|not sure|check my|whether|"
    r"next (?:year|month)|later|before|more about|"
    r"call me|give me a call|get back to you|let me (?:check|know|think)|more information|"
    r"waiting list|wait list)\b|\u2047",
    re.IGNORECASE,
)
_CAPACITY = re.compile(
    r"kapazit(?:ä|ae|a)t|kapazit\w*|keine?n?\s+(?:freien?\s+|neuen?\s+|weiteren?\s+)?"
    r"(?:therapie)?pl(?:ä|ae|a)tze?|kein(?:en)?\s+(?:freien?\s+)?(?:therapie)?platz|"
    r"keine (?:freien )?termine|keine zeit|\bvoll\b|ausgebucht|ausgelastet|vollständig belegt|"
    r"alle plätze|belegt|aufnahmestopp|aufnahmesperre|warteliste (?:ist )?(?:geschlossen|voll)|"
    r"keine neuen|keine weiteren|no (?:capacity|space|spaces|places|openings|availability|room)|"
    r"(?:waiting|wait) list (?:is )?(?:closed|full)|"
    r"fully booked|\bfull\b|at capacity|not taking (?:on )?new|not accepting new|"
    r"no free (?:slots|places)|my caseload",
    re.IGNORECASE,
)
_CAPACITY_REASON = re.compile(  # in a refusal: "für keinen einen Platz frei", "keine Zeit"
    r"\bpl(?:ä|ae|a)tze?\b|\bzeit\b|\btermine?\b|\bkapazit|\bspace\b|\bslots?\b|\bplaces?\b",
    re.IGNORECASE,
)
_UNSUITABLE = re.compile(
    r"nicht\s+(?:ganz\s+)?geeignet|ungeeignet|passt\s+(?:leider\s+|fachlich\s+|inhaltlich\s+)?"
    r"nicht|passen\s+(?:leider\s+|fachlich\s+)?nicht|nicht\s+(?:\w+\s+)?passend|schwerpunkt|"
    r"fachgebiet|nicht mein(?:em)?\s+(?:bereich|spektrum|gebiet)|außerhalb meine|"
    r"behandle\s+(?:ich\s+)?(?:leider\s+)?(?:keine|nicht|nur|ausschließlich)|behandeln\s+(?:wir\s+)?"
    r"(?:leider\s+)?(?:keine|nicht|nur|ausschließlich)|"
    r"(?:nur|ausschließlich)\s+(?:kinder|jugendliche|erwachsene|privat)|"
    r"nicht\s+(?:die|der)\s+richtige|"
    r"keine\s+(?:kassenzulassung|kinder|jugendlichen|erwachsenen|suchtpatient)|"
    r"nicht\s+indiziert|nicht\s+zu\s+meinem|andere\s+(?:therapie)?richtung|fachfremd|"
    r"(?:spezialisiert|spezialisierung)|not\s+(?:a\s+)?(?:good\s+)?(?:suitable|fit|match)|"
    r"outside\s+(?:of\s+)?my|not\s+my\s+(?:area|field|specialty)|(?:do not|don't)\s+treat|"
    r"only\s+(?:treat|work with)|not\s+(?:the\s+)?right\s+(?:fit|therapist)",
    re.IGNORECASE,
)
_OTHER_REASON = re.compile(
    r"urlaub|ruhestand|rente\b|praxisaufgabe|praxis\s+(?:\w+\s+)?(?:aufgeben|schließen|"
    r"schliesse|abgeben|auflösen)|schließe\s+(?:meine\s+)?praxis|elternzeit|mutterschutz|"
    r"krankheit|erkrankt|krankgeschrieben|umzug|ziehe\s+um|sabbatical|auszeit|"
    r"praxis\s+(?:wird|ist)\s+geschlossen|retir|maternity|parental leave|sick leave|"
    r"closing my practice|moving away|vacation|on leave",
    re.IGNORECASE,
)
_REFUSE = re.compile(
    r"\bnein\b|\bleider\s+(?:\w+\s+){0,4}?(?:nicht|kein\w*|nein)\b|\bnicht\s+(?:\w+\s+)?"
    r"(?:möglich|machbar|annehmen|aufnehmen|nehmen|übernehmen|anbieten|helfen|behandeln|"
    r"realisierbar|zusagen)\b|\bkann\s+(?:ich\s+)?(?:\w+\s+){0,3}?(?:nicht|kein\w*)\b|"
    r"\bkönnen\s+(?:wir\s+)?(?:\w+\s+){0,3}?(?:nicht|kein\w*)\b|"
    r"\bmuss\s+(?:ich\s+)?(?:\w+\s+){0,3}?(?:absagen|ablehnen|passen)|\babsage\b|"
    r"\babsagen\b|\bablehnen\b|\bkeine\s+(?:möglichkeit|chance|aufnahme)\b|"
    r"\b(?:no|nope)\b|\bunfortunately\b|\bsorry\b|\bcan(?:no|')t\b|\bcan not\b|"
    r"\bunable\b|\bnot able\b|\bnot possible\b|\bdecline\b|\bhave to pass\b|"
    r"\bnot\s+(?:take|accept|offer)\b|\bwon't be able\b",
    re.IGNORECASE,
)
_WEAK_REFUSE = re.compile(r"\bleider\b", re.IGNORECASE)
_ACCEPT = re.compile(
    r"\bgerne?\b|\b(?:nehme|nehmen|übernehme|übernehmen|aufnehmen|annehmen|zusagen|"
    r"sage\s+\w*\s*zu|biete\s+(?:\w+\s+){0,5}?an|anbieten|übernehmen)\b|\bnehme\w*\b.{0,40}\b(?:auf|an)\b|"
    r"\bhabe\s+(?:\w+\s+){0,3}?(?:platz|plätze|kapazität|einen platz|zeit)\b|"
    r"\b(?:kann|können)\s+(?:\w+\s+){0,4}?(?:kommen|vorbeikommen|sich melden|melden|"
    r"anrufen|vereinbaren)\b|\bsich\s+(?:\w+\s+){0,3}?melden\b|"
    r"\bkontaktdaten\b|\bzusage\b|\bpasst\b|\bpasst gut\b|"
    r"\bkennenlernen\b|\beinladen\b|\blade\b.{0,60}\bein\b|\bvorstellen\b|"
    r"\b(?:habe|hätte|ist)\s+(?:\w+\s+){0,4}?(?:einen\s+)?(?:freien\s+)?platz(?:\s+frei)?\b|"
    r"\b(?:yes|sure|gladly|happy to|glad to|i can take|i can offer|i can see|i'?ll take|"
    r"i will take|i can accept|accept|take on|could take|would take|can take|could offer|"
    r"can offer|see|welcome)\b|\bwillkommen\b",
    re.IGNORECASE,
)
_JA = re.compile(r"\b(?:ja|jawohl|jep|yes)\b", re.IGNORECASE)
_FUTURE = re.compile(
    r"\b(?:wieder\s+an\w*|erneut|in zukunft|zukünftig|künftig|später|gern(?:e)?\s+wieder|"
    r"nächste(?:n|s|r)?\s+(?:mal|jahr|quartal|monat|anfrage)|bei (?:der )?nächsten|"
    r"in the future|next time|again)\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(
    r"\b(?:nicht|kein\w*|nie|niemals|not|no|cannot|can't|don't|won't|unable)\b", re.IGNORECASE
)
_THANKS = re.compile(
    r"^\s*(?:vielen|herzlichen|besten)?\s*dank\w*\b[^.!?]*|^\s*thank(?:s| you)\b[^.!?]*", re.I
)

_VOCAB = (
    "leider", "kapazität", "kapazitäten", "annehmen", "aufnehmen", "übernehmen",
    "patient", "patientin", "patienten", "freien", "derzeit", "momentan", "aktuell",
    "geeignet", "schwerpunkt",
    "unfortunately", "capacity", "anbieten", "erstgespräch", "vielleicht", "eventuell",
)  # fmt: skip


def _fix_typos(text: str) -> str:
    def fix(match: re.Match) -> str:
        word = match.group(0)
        lower = word.lower()
        if len(lower) < 5 or lower in _VOCAB:
            return word
        close = difflib.get_close_matches(lower, _VOCAB, n=1, cutoff=0.84)
        if close and close[0][0] == lower[0] and abs(len(close[0]) - len(lower)) <= 1:
            return close[0]
        return word

    return re.sub(r"[A-Za-zÄÖÜäöüß]+", fix, text)


@dataclass
class _Clause:
    text: str
    refs: set = field(default_factory=set)  # patient ids, or ALL / OTHERS / VAGUE
    polarity: str | None = None
    reason: str | None = None
    hedge: bool = False
    not_all: bool = False
    question: bool = False
    unknown: list = field(default_factory=list)  # numbers that are no patient of the bundle
    sentence: str = ""  # the sentence as written, for notes


def _num(token: str) -> int:
    return int(token)


def _resolve_number(n: int, patient_ids: Sequence[int], *, bare: bool) -> int | str | None:
    """A number in a patient reference: a patient id of the bundle, else a position."""
    if n in patient_ids:
        return n
    if not bare and 1 <= n <= len(patient_ids):
        return patient_ids[n - 1]
    return None


def _references(text: str, patient_ids: Sequence[int], clause: _Clause) -> None:
    n = len(patient_ids)
    work = text
    for match in _REF_NUMBERED.finditer(work):
        for token in re.findall(r"\d{1,7}", match.group(1)):
            value = _resolve_number(_num(token), patient_ids, bare=False)
            if value is None:
                clause.unknown.append(token)
            else:
                clause.refs.add(value)
    work = _REF_NUMBERED.sub(" ", work)
    match = _REF_LINE_START.match(work)
    if match:
        value = _resolve_number(_num(match.group(1)), patient_ids, bare=False)
        if value is None:
            clause.unknown.append(match.group(1))
        else:
            clause.refs.add(value)
        work = work[match.end() :]
    match = _REF_SMALL_LIST.match(work)
    if match:
        for token in re.findall(r"\d", match.group(1)):
            value = _resolve_number(_num(token), patient_ids, bare=False)
            if value is None:
                clause.unknown.append(token)
            else:
                clause.refs.add(value)
        work = work[match.end() :]
    for match in _REF_FOR_LIST.finditer(work):
        for token in re.findall(r"\d", match.group(1)):
            value = _resolve_number(_num(token), patient_ids, bare=False)
            if value is None:
                clause.unknown.append(token)
            else:
                clause.refs.add(value)
    for match in _REF_BARE.finditer(work):
        if int(match.group(1)) in patient_ids:
            clause.refs.add(int(match.group(1)))
    for match in _REF_ORDINAL_LIST.finditer(work):
        for stem in match.groups():
            stem = stem.lower()
            pos = n if stem in ("letzt", "last") else _ORDINALS.get(stem)
            if pos and pos <= n:
                clause.refs.add(patient_ids[pos - 1])
            else:
                clause.unknown.append(stem)
    work = _REF_ORDINAL_LIST.sub(" ", work)
    for match in _REF_ORDINAL.finditer(work):
        if _NOT_PATIENT_AFTER_ORDINAL.match(work[match.end() :]):
            continue
        before, stem, after = match.group(1), match.group(2).lower(), match.group(3)
        count = before or after
        pos = n if stem in ("letzt", "last") else _ORDINALS.get(stem)
        if (
            stem in ("erst", "first")
            and not count
            and re.match(r"\s*(?:einmal|mal)\b", work[match.end() :], re.I)
        ):
            continue
        if count:
            k = _NUMBER_WORDS.get(count.lower(), 2) if count.lower() != "beiden" else 2
            if stem in ("erst", "first"):
                chosen = patient_ids[:k]
            elif stem in ("letzt", "last"):
                chosen = patient_ids[-k:]
            else:
                clause.unknown.append(match.group(0))
                continue
            if k > n:
                clause.unknown.append(match.group(0))
            clause.refs.update(chosen)
        elif pos and pos <= n:
            clause.refs.add(patient_ids[pos - 1])
        else:
            clause.unknown.append(match.group(0))
    if _REF_NOT_ALL.search(text):
        clause.not_all = True
    elif _REF_NONE.search(text):
        clause.refs.add(ALL)
        clause.polarity = REFUSE
    elif _REF_OTHERS.search(text):
        clause.refs.add(OTHERS)
    elif _REF_ALL.search(text):
        clause.refs.add(ALL)
    if _REF_VAGUE.search(_REF_NUMBERED.sub(" ", text)) and not clause.refs:
        clause.refs.add(VAGUE)


def _reason(text: str) -> str:
    if _UNSUITABLE.search(text):
        return NICHT_GEEIGNET
    if _OTHER_REASON.search(text):
        return SONSTIGES
    if _CAPACITY.search(text) or _CAPACITY_REASON.search(text):
        return KAPAZITAET
    return None


def _polarity(text: str, clause: _Clause) -> None:
    if clause.polarity == REFUSE:  # "keinen der Patienten"
        clause.reason = _reason(text)
        return
    body = _THANKS.sub(" ", text)
    refuse = bool(
        _REFUSE.search(body)
        or _CAPACITY.search(body)
        or _UNSUITABLE.search(body)
        or (_OTHER_REASON.search(body) and _NEGATION.search(body))
    )
    accept_text = _CAPACITY.sub(" ", body)
    accept_text = _UNSUITABLE.sub(" ", accept_text)
    accept_text = _REFUSE.sub(" ", accept_text)
    accept_text = re.sub(
        r"\b(?:nehmen|geben|schicken|senden)\s+sie\b", " ", accept_text, flags=re.I
    )
    accept = bool(_ACCEPT.search(accept_text))
    if _FUTURE.search(body) and (refuse or not clause.refs):
        accept = False
    stripped = re.sub(r"[^\wäöüß ]", " ", accept_text).strip()
    if _JA.search(stripped):
        words = stripped.lower().split()
        if words and (words[0] in ("ja", "yes", "jawohl") or words[-1] in ("ja", "yes")):
            accept = True
    if accept and _NEGATION.search(body):
        refuse, accept = True, False  # "Patient 2 kann ich nicht nehmen", "nehme keine ... an"
    if refuse and accept:
        clause.polarity = "mixed"
    elif refuse:
        clause.polarity = REFUSE
    elif accept:
        clause.polarity = ACCEPT
    elif clause.refs and re.search(r"\b(?:nicht|not)\b", body, re.I) and len(body.split()) <= 6:
        clause.polarity = REFUSE  # "1 und 3 nicht"
    elif _WEAK_REFUSE.search(body):
        clause.polarity = "weak_refuse"
    if clause.polarity in (REFUSE, "weak_refuse", "mixed"):
        clause.reason = _reason(body)
    if _HEDGE.search(body):
        clause.hedge = True
    if _QMARK in text:
        clause.question = True


_SENTENCE_SPLIT = re.compile(
    r"(?<!\bnr)(?<!\bno)(?<!\bz\.b)(?<!\bz\. b)(?<!\bdr)(?<!\bca)(?<!\bggf)(?<!\bevtl)(?<!\bbzw)"
    r"(?<!\bu)(?<!\bpat)(?<!\btel)(?<!\bstr)(?<!\bmo)(?<!\bdi)(?<!\bmi)(?<!\bdo)(?<!\bfr)"
    r"[.!?;]+(?=\s|$)|\n",
    re.IGNORECASE,
)
_CLAUSE_SPLIT = re.compile(
    r"\s*(?:,|–|—|\s-\s)?\s*\b(?:aber|jedoch|allerdings|doch|but|however|während|whereas|"
    r"sondern)\b\s*|"
    r"\s*(?:,|–|—|\s-\s)\s*(?=(?:und\s+|and\s+)?(?:für\s+|bei\s+|zu\s+|mit\s+)?"
    r"(?:die|den|der|dem|alle|the|patient|pat|nr|nummer|#|p\d|\d|leider|unfortunately|"
    r"ja\b|nein\b|gerne?\b|yes\b|no\b|beide|keine|erst|zweit|dritt|letzt|first|second|third))"
    r"|\s+(?:und|and)\s+(?=(?:für\s+|bei\s+)?(?:die|den|der|the)\s+(?:anderen|übrigen|rest|others))"
    r"|\s*:\s+(?=(?:ja|nein|gerne?|leider|yes|no)\b)"
    # compact lists "1 ja 2 ja 3 nein": a new item after an answer word
    r"|(?:(?<=\bja)|(?<=\bnein)|(?<=\bgern)|(?<=\bgerne)|(?<=\byes)|(?<=\bno)|(?<=\bnicht))"
    r"\s+(?=\d{1,2}\s*[:.)]?\s*(?:ja|nein|gerne?|leider|yes|no)\b)",
    re.IGNORECASE,
)


def _clauses(text: str, patient_ids: Sequence[int]) -> list[list[_Clause]]:
    sentences = []
    for line in text.split("\n"):
        if not line.strip() or answer_form.parse_line(line) is not None:
            continue
        if _PHONE_LINE.search(line):
            contact = _PHONE_NUMBER.search(line) or re.search(r"@|www\.|https?://", line)
            if (
                contact
                and len(line.strip()) <= 60
                and not re.search(rf"{_PAT}|\b(?:nr|nummer|#)\b", line, re.IGNORECASE)
            ):
                continue  # a signature's contact line
            line = _PHONE_NUMBER.sub(" ", line)
        for sentence in _SENTENCE_SPLIT.split(line.replace("?", f" {_QMARK}.")):
            if sentence and sentence.strip():
                sentences.append(sentence.strip())
    result = []
    for sentence in sentences:
        fixed = _fix_typos(sentence)
        clauses = []
        for part in _CLAUSE_SPLIT.split(fixed):
            if not part or not part.strip(" ,"):
                continue
            clause = _Clause(part.strip(" ,"), sentence=sentence)
            _references(clause.text, patient_ids, clause)
            _polarity(clause.text, clause)
            clauses.append(clause)
        # "3) nein, keine Kapazität": a reason clause completes the refusal before it
        for prev, clause in zip(clauses, clauses[1:], strict=False):
            if (
                not clause.refs
                and clause.polarity == REFUSE
                and prev.refs
                and prev.polarity == REFUSE
            ):
                prev.reason = prev.reason or clause.reason
                clause.polarity = "absorbed"
        # within a sentence: references without polarity meet polarity without references
        for i, clause in enumerate(clauses):
            if clause.refs and clause.polarity is None:
                for other in clauses[i + 1 :] + clauses[:i][::-1]:
                    if other.polarity and not other.refs:
                        clause.polarity, clause.reason = other.polarity, other.reason
                        clause.hedge = clause.hedge or other.hedge
                        other.polarity = "absorbed"
                        break
        result.append(clauses)
    # across lines: "Patient 2345:" on one line, "gerne" on the next
    flat = [c for s in result for c in s]
    for i, clause in enumerate(flat[:-1]):
        nxt = flat[i + 1]
        if clause.refs and clause.polarity is None and nxt.polarity and not nxt.refs:
            clause.polarity, clause.reason, clause.hedge = nxt.polarity, nxt.reason, nxt.hedge
            nxt.polarity = "absorbed"
    return result


# Beside a decision: how and when to get in touch. A hedge or question made only of such
# words is logistics (notes, open question), not doubt about the decision.
_LOGISTICS = re.compile(
    r"\b(?:anruf\w*|anrufen|rufen|rückruf|erreichbar|erreichen|telefon\w*|tel|"
    r"sprechstunde|sprechzeit\w*|termin\w*|uhrzeit|uhr|wann|kontakt\w*|nummer|adresse|"
    r"e-?mail|melden|mo|di|mi|do|fr|montag\w*|dienstag\w*|mittwoch\w*|donnerstag\w*|"
    r"freitag\w*|morgens|vormittags?|nachmittags?|abends|kommen|vorbeikommen|passt das|"
    r"call|phone|reach|contact|when|appointment|schedule|come in|monday|tuesday|wednesday|"
    r"thursday|friday|mornings?|afternoons?|evenings?)\b|\d{1,2}(?:[:.]\d{2})?\s*(?:–|-|bis)\s*\d",
    re.IGNORECASE,
)
# Doubt about the decision itself: never logistics.
_UNSURE = re.compile(
    r"\b(?:vielleicht|eventuell|evtl|ggf|gegebenenfalls|möglicherweise|unter umständen|"
    r"sofern|falls|wenn|ob|vorausgesetzt|voraussetzung|bedingung|je nachdem|mal sehen|"
    r"mal schauen|prüfen|prüfe|klären|kläre|überlege\w*|nachdenken|besprechen|unsicher|"
    r"sicher|weiß|warteliste|wartezeit|erst|frühestens|später|vorher|zuvor|zunächst|"
    r"informationen|angaben|erfahren|melde mich|melde ich mich|melden uns|melden wir uns|"
    r"zurück\w*|bescheid|rücksprache|soll|sollen|diagnose\w*|symptom\w*|"
    r"maybe|perhaps|possibly|might|if|whether|provided|depending|sure|waiting|wait|"
    r"information|get back|let me|first|before|later|should|check)\b",
    re.IGNORECASE,
)


# "zu den anderen melde ich mich noch": the rest will be answered later (domain §0.14)
_LATER_OTHERS = re.compile(
    r"\b(?:zu|für|wegen|bei|über|bezüglich|hinsichtlich)\s+(?:den|die|der|dem)\s+"
    r"(?:anderen|übrigen|restlichen|weiteren)\b.{0,60}\b(?:melde|gebe|komme|schreibe|antworte|"
    r"rückmeldung|bescheid)|"
    r"\b(?:melde|gebe|komme|schreibe)\b.{0,40}\b(?:zu|für|wegen)\s+(?:den|die)\s+"
    r"(?:anderen|übrigen|restlichen)\b|"
    r"\b(?:the|for the)\s+(?:others|rest|other \w+)\b.{0,40}\b(?:get back|let you know|reply)|"
    r"\b(?:get back to you|let you know)\b.{0,30}\b(?:the others|the rest|the other \w+)",
    re.IGNORECASE,
)
_THIRD_PARTY = re.compile(r"\b(?:kolleg\w*|colleague\w*|andere[nr]? praxis|other practice)", re.I)


def _logistics_only(clause: _Clause) -> bool:
    """A hedged or asking clause that only arranges contact, names no patient and doubts
    nothing (``_UNSURE``): "Wann können Sie anrufen?", "ich bin Di 8-9 erreichbar"."""
    if any(isinstance(r, int) for r in clause.refs) or clause.not_all or clause.unknown:
        return False
    if _UNSURE.search(clause.text):
        return False
    return bool(_LOGISTICS.search(clause.text))


def _describe(decisions: dict[int, str]) -> str:
    return ", ".join(f"{pid}={outcome}" for pid, outcome in decisions.items())


def decide(text: str, patient_ids: list[int], *, rest: bool = False) -> Decision:
    """Read a reply body for the patients of one Anfrage (bundle order).

    ``rest``: the patients are those left open by an earlier partial answer (domain §0.14),
    so "die anderen" / "the others" means all of them."""
    ids = [int(p) for p in patient_ids]
    if not ids:
        return Decision({}, True, "no patients given")
    if len(set(ids)) != len(ids):
        return Decision({}, True, "duplicate patient ids")
    full = (text or "").replace("\r\n", "\n")

    # 1. the structured form, anywhere in the text (inline answers in the quote count)
    lines = answer_form.parse_answer_form(full)
    form = answer_form.answers_by_patient(lines)
    foreign = sorted(pid for pid in form if pid not in ids and form[pid].status != "blank")
    if foreign:
        return Decision({}, True, f"answer form names patients outside the Anfrage: {foreign}")
    form_answers: dict[int, str] = {}
    for pid, line in form.items():
        if line.status == answer_form.AMBIGUOUS:
            return Decision({}, True, f"answer form line for patient {pid} is ambiguous")
        if line.status == answer_form.ANSWERED:
            form_answers[pid] = line.outcome

    # 2. free text
    own = strip_quoted(full)
    own_lines = [ln for ln in own.split("\n") if answer_form.parse_line(ln) is None]
    own = "\n".join(own_lines).strip()
    sentences = _clauses(own, ids)
    clauses = [c for s in sentences for c in s]

    problems: list[str] = []
    explicit: dict[int, set[tuple[str, str | None]]] = {}
    others: list[_Clause] = []
    everyone: list[_Clause] = []
    global_: list[_Clause] = []
    hedged = False
    logistics: list[_Clause] = []  # hedges / questions that only arrange contact
    offers: list[_Clause] = []  # hedges that are no polite "maybe another time"
    hedges: list[_Clause] = []
    evidence: list[str] = []
    for clause in clauses:
        if clause.unknown and clause.polarity not in (None, "absorbed"):
            problems.append(f"reference {', '.join(map(str, clause.unknown))} is not in the bundle")
        if clause.not_all:
            problems.append(f"'{clause.text}' (not all)")
        if (clause.hedge or clause.question) and clause.polarity != REFUSE:
            if _logistics_only(clause):
                logistics.append(clause)
                if clause.question or clause.polarity != ACCEPT:
                    continue  # "Wann können Sie anrufen?", "Passt das?": no decision in it
            elif clause.hedge:
                hedged = True
                hedges.append(clause)
                problems.append(f"hedged: '{clause.text}'")
                # "eventuell in meiner Gruppe" offers something; "vielleicht wieder" and a
                # colleague who "hat vielleicht etwas frei" do not
                context = clause.sentence or clause.text
                if not (_FUTURE.search(clause.text) or _THIRD_PARTY.search(context)):
                    offers.append(clause)
        elif clause.polarity is None and _logistics_only(clause):
            logistics.append(clause)  # "Ich bin Di 8-9 erreichbar": a note, no decision
        if clause.polarity in (None, "absorbed"):
            continue
        evidence.append(f"'{clause.text}': {_evidence_label(clause)}")
        if clause.polarity == "mixed":
            problems.append(f"acceptance and refusal in one clause: '{clause.text}'")
            continue
        if VAGUE in clause.refs:
            if len(ids) == 1:
                clause.refs = {ids[0]}
            else:
                problems.append(f"patient described, not named: '{clause.text}'")
                continue
        pids = {r for r in clause.refs if isinstance(r, int)}
        for pid in pids:
            explicit.setdefault(pid, set()).add((clause.polarity, clause.reason))
        if OTHERS in clause.refs and not pids:
            others.append(clause)
        elif ALL in clause.refs and not pids:
            everyone.append(clause)
        elif not clause.refs:
            global_.append(clause)

    decisions: dict[int, str] = {}
    how: list[str] = []

    # a refusal without a reason takes the reason the therapist gave for everyone
    general = {
        c.reason
        for c in clauses
        if c.polarity in (REFUSE, "weak_refuse")
        and c.reason
        and not {r for r in c.refs if isinstance(r, int)}
    }
    fallback = _pick_reason(general) if general else SONSTIGES

    def outcome_of(polarity: str, reason: str | None) -> str:
        return ANGENOMMEN if polarity == ACCEPT else (reason or fallback)

    strong_global = [c for c in global_ if c.polarity in (ACCEPT, REFUSE)]
    weak_global = [c for c in global_ if c.polarity == "weak_refuse"]
    if not strong_global and not explicit and not others and not everyone and weak_global:
        strong_global = [
            _Clause(c.text, polarity=REFUSE, reason=c.reason or fallback) for c in weak_global
        ]
    for pid, found in explicit.items():
        found = {(p if p != "weak_refuse" else REFUSE, r) for p, r in found}
        polarities = {p for p, _ in found}
        if len(polarities) > 1:
            problems.append(f"patient {pid}: acceptance and refusal")
            continue
        if polarities == {ACCEPT}:
            decisions[pid] = ANGENOMMEN
        else:
            reasons = {r for _, r in found if r}
            decisions[pid] = _pick_reason(reasons) if reasons else fallback
    if explicit:
        how.append("named patients")
    for clause in everyone:
        for pid in ids:
            outcome = outcome_of(clause.polarity, clause.reason)
            if clause.polarity == "weak_refuse":
                outcome = clause.reason or fallback
            if pid in decisions and (decisions[pid] == ANGENOMMEN) != (outcome == ANGENOMMEN):
                problems.append(f"patient {pid}: contradicts '{clause.text}'")
            decisions.setdefault(pid, outcome)
        how.append("all patients")
    rest = [pid for pid in ids if pid not in decisions and pid not in form_answers]
    if rest and not decisions and not form_answers:
        everyone_others, others = others, []
        for clause in everyone_others:
            for pid in ids:
                outcome = (
                    clause.reason or fallback
                    if clause.polarity == "weak_refuse"
                    else outcome_of(clause.polarity, clause.reason)
                )
                decisions.setdefault(pid, outcome)
            how.append("the rest left open before")
    for clause in others:
        if not decisions and not form_answers:
            problems.append(f"'the others' without a named patient: '{clause.text}'")
            continue
        for pid in rest:
            outcome = (
                clause.reason or fallback
                if clause.polarity == "weak_refuse"
                else outcome_of(clause.polarity, clause.reason)
            )
            decisions.setdefault(pid, outcome)
        how.append("the others")
    accepts_global = [c for c in strong_global if c.polarity == ACCEPT]
    refuses_global = [c for c in strong_global if c.polarity == REFUSE]
    if accepts_global and refuses_global and not explicit and not form_answers:
        problems.append("acceptance and refusal without naming patients")
    elif accepts_global:
        if len(ids) == 1 and not explicit and not form_answers:
            decisions.setdefault(ids[0], ANGENOMMEN)
            how.append("acceptance of the single patient")
        elif any(d == ANGENOMMEN for d in decisions.values()) or any(
            v == ANGENOMMEN for v in form_answers.values()
        ):
            pass  # "Ja, gerne." next to a named acceptance
        elif refuses_global or decisions or form_answers:
            problems.append("acceptance without naming the patient")
        else:
            problems.append("acceptance without naming which patient")
    if refuses_global and not (accepts_global and not explicit and not form_answers):
        given = {c.reason for c in refuses_global if c.reason}
        reason = _pick_reason(given) if given else fallback
        for pid in ids:
            if pid not in decisions and pid not in form_answers:
                decisions[pid] = reason
        how.append("refusal for the rest" if explicit or form_answers else "refusal of all")

    # 3. combine form and text: any disagreement about acceptance goes to review (issue 17:
    # a form ticking "ja" above "no one can be taken at the moment" was an acceptance)
    text_refuses_all = [c for c in everyone + refuses_global if c.polarity != ACCEPT]
    text_accepts_all = [c for c in everyone + accepts_global if c.polarity == ACCEPT]
    for pid, outcome in form_answers.items():
        said = decisions.get(pid)
        conflict = said is not None and (said == ANGENOMMEN) != (outcome == ANGENOMMEN)
        if outcome == ANGENOMMEN and text_refuses_all and said != ANGENOMMEN:
            conflict, said = True, f"'{text_refuses_all[0].text}'"
        if (
            outcome != ANGENOMMEN
            and pid not in explicit
            and [c for c in text_accepts_all if ALL in c.refs]
        ):
            conflict, said = True, f"'{text_accepts_all[0].text}'"
        if conflict:
            problems.append(f"patient {pid}: form says {outcome}, text says {said}")
            continue
        decisions[pid] = outcome
        evidence.insert(0, f"Antwortformular: Patient {pid} = {outcome}")
    if form_answers:
        how.insert(0, "answer form")

    accepted = [pid for pid, outcome in decisions.items() if outcome == ANGENOMMEN]
    later = [c for c in hedges if _LATER_OTHERS.search(c.sentence or c.text)]
    announced = bool(accepted) and bool(later) and len(later) == len(hedges)
    if announced:  # "Patient 1 gerne, zu den anderen melde ich mich": not a doubt
        hedged = False
        problems = [p for p in problems if not p.startswith("hedged")]
        offers = [o for o in offers if o not in later]
        evidence.append(f"'{later[0].text}': weitere Antwort angekündigt (§0.14)")
    if hedged and (accepted or len(decisions) < len(ids)):
        return Decision(
            {},
            True,
            "; ".join(dict.fromkeys(p for p in problems if p.startswith("hedged"))),
            evidence=evidence,
        )
    if offers and not accepted:  # a refusal beside an uncertain offer: staff decide
        problems.append(f"uncertain offer beside the refusal: '{offers[0].text}'")
    asked = [c for c in clauses if c.question and c not in logistics]
    if asked:
        problems.append(f"the therapist asks: '{asked[0].text}'")
    hard = [p for p in problems if not p.startswith("hedged")]
    if hard:
        return Decision({}, True, "; ".join(dict.fromkeys(hard)), evidence=evidence)
    missing = [pid for pid in ids if pid not in decisions]
    if missing and announced:
        named = {pid: decisions[pid] for pid in ids if pid in decisions}
        return Decision(
            named,
            False,
            f"{' + '.join(dict.fromkeys(how))}: {_describe(named)}; "
            f"weitere Antwort angekündigt für {', '.join(map(str, missing))}",
            evidence=evidence,
            logistics=list(dict.fromkeys(_plain(c.sentence or c.text) for c in logistics)),
            questions=list(
                dict.fromkeys(_plain(c.sentence or c.text) for c in logistics if c.question)
            ),
            pending=missing,
        )
    if missing and any(d == ANGENOMMEN for d in decisions.values()):
        # domain §0.14: an acceptance that says nothing about the others declines them
        # (a reply announcing a later answer for them is a hedge and went to review above)
        for pid in missing:
            decisions[pid] = KAPAZITAET
        evidence.append(
            f"keine Aussage zu Patient {', '.join(map(str, missing))}: {KAPAZITAET} (§0.14)"
        )
        how.append("silence on the others")
        missing = []
    if missing:
        if not decisions:
            return Decision({}, True, "no answer recognised", evidence=evidence)
        return Decision(
            {},
            True,
            f"no answer for patient(s) {', '.join(map(str, missing))}",
            evidence=evidence,
        )
    ordered = {pid: decisions[pid] for pid in ids}
    notes = list(dict.fromkeys(_plain(c.sentence or c.text) for c in logistics))
    return Decision(
        ordered,
        False,
        f"{' + '.join(dict.fromkeys(how))}: {_describe(ordered)}",
        evidence=evidence,
        logistics=notes,
        questions=list(
            dict.fromkeys(_plain(c.sentence or c.text) for c in logistics if c.question)
        ),
    )


def _plain(text: str) -> str:
    """A clause as the therapist wrote it (the question mark back in place)."""
    return re.sub(r"\s*\u2047", "?", text).strip()


def _evidence_label(clause: _Clause) -> str:
    """The clause's meaning as read: polarity, reason, whom it names."""
    whom = sorted(str(r) for r in clause.refs) or ["(niemand genannt)"]
    what = {ACCEPT: "Annahme", REFUSE: "Ablehnung", "weak_refuse": "Ablehnung"}.get(
        clause.polarity, clause.polarity or "?"
    )
    reason = f" ({clause.reason})" if clause.reason and clause.polarity != ACCEPT else ""
    return f"{what}{reason} für {', '.join(whom)}"


def _pick_reason(reasons: set[str | None]) -> str:
    for reason in (NICHT_GEEIGNET, KAPAZITAET, SONSTIGES):
        if reason in reasons:
            return reason
    return SONSTIGES


def understand(message: Message, patient_ids: list[int], *, rest: bool = False) -> Decision:
    """Auto-replies give an empty, non-review Decision (record nothing); else ``decide``."""
    auto = is_auto_reply(message)
    if auto:
        return Decision({}, False, f"auto-reply: {auto}")
    return decide(message.text, patient_ids, rest=rest)
