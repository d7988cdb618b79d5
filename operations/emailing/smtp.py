"""Building an outgoing email and handing it to the SMTP server named by ``SMTP_URL``.

Standard parts only: each message is an ``email.message.EmailMessage`` with policy
``email.policy.SMTP`` (the library encodes non-ASCII headers and names, picks each
part's transfer encoding and folds long lines), sent with ``smtplib``'s
``send_message`` (which also does the dot-stuffing). A batch of messages shares
one connection (``Session``).

``SMTP_URL`` forms:

- ``smtp://host:port`` plain SMTP (default port 25; the demo sink is
  ``smtp://127.0.0.1:8025``); ``smtp://host:587?starttls=true`` upgrades with STARTTLS;
- ``smtp+starttls://host:587`` the same, spelled as a scheme;
- ``smtps://host:465`` implicit TLS;
- ``user:password@`` in any of them logs in (AUTH) after the TLS upgrade;
  percent-encode special characters;
- ``?cafile=/path/ca.pem`` trusts that CA in addition to the system store (a
  private relay, or the self-signed certificate of the tests).

Certificates and host names are always verified. Every network operation has
the timeout ``SMTP_TIMEOUT_S``.

Failures are split the way SMTP splits them: a 5xx reply to the message
(sender, recipient or data refused) is ``PermanentError``, and so is a message
that cannot be built (a line break in a header, an unreadable attachment); 4xx
replies, refused or dropped connections, timeouts and TLS errors are
``TemporaryError``. A rejected login or a server without STARTTLS is a
configuration fault that hits every email alike, so it is temporary too: once the
configuration is fixed, the queue drains instead of every email having been
marked failed.
"""

from __future__ import annotations

import datetime as dt
import email.errors
import email.policy
import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from psymatch import mail_policy

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # attachments are PDFs of at most 10 MB each
# set by build_message itself; any of them in ``headers`` is ignored
_RESERVED = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type"}
_SEVEN_BIT = mail_policy.SMTP.clone(cte_type="7bit")
# RFC 5322 2.1.1: a line of a message is at most 998 octets, without its CRLF
MAX_LINE_OCTETS = 998


class SendError(Exception):
    """Sending failed; ``str(exc)`` is what staff see in ``fehlermeldung``."""


class TemporaryError(SendError):
    """Worth retrying later: 4xx, connection or TLS trouble, timeouts."""


class PermanentError(SendError):
    """Retrying will not help: 5xx for this message, or a message that cannot be built."""


class SmtpUrlError(ValueError):
    """An SMTP_URL psymatch cannot use."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    security: str  # "plain", "starttls" or "tls"
    username: str | None
    password: str | None
    timeout: float
    cafile: str | None = None


def parse_smtp_url(url: str, timeout: float = 20.0) -> SmtpTarget:
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    options = {k.lower(): v[-1] for k, v in parse_qs(parsed.query).items()}
    starttls = options.get("starttls", "").lower() in ("1", "true", "yes", "on")
    if scheme == "smtp":
        security, default_port = ("starttls" if starttls else "plain"), 25
    elif scheme in ("smtp+starttls", "submission"):
        security, default_port = "starttls", 587
    elif scheme == "smtps":
        security, default_port = "tls", 465
    else:
        raise SmtpUrlError(
            f"SMTP_URL scheme {scheme!r} not supported (smtp://, smtp+starttls://, smtps://)"
        )
    if not parsed.hostname:
        raise SmtpUrlError("SMTP_URL names no host")
    try:
        port = parsed.port or default_port
    except ValueError as exc:
        raise SmtpUrlError(f"SMTP_URL has a bad port: {exc}") from None
    return SmtpTarget(
        host=parsed.hostname,
        port=port,
        security=security,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        timeout=float(options.get("timeout", timeout)),
        cafile=options.get("cafile") or None,
    )


def build_message(
    *,
    from_addr: str,
    from_name: str | None,
    to_addr: str,
    to_name: str | None,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    date: dt.datetime,
    headers: dict[str, str] | None = None,
    attachments: list[str] = (),
) -> EmailMessage:
    """The message: text, with the HTML as its alternative, and files (PDFs) attached
    (multipart/mixed around the alternative). ``headers`` adds Reply-To, In-Reply-To,
    References and the like. ``date`` is naive UTC or aware.

    Raises ``PermanentError`` for a message that cannot be built: a line break in a
    header (header injection), an address the library cannot parse, an attachment
    that cannot be read or is too large."""
    files = [(Path(path).name, _read_attachment(path)) for path in attachments]
    message = EmailMessage(policy=mail_policy.SMTP)
    try:
        message["From"] = Address(display_name=from_name or "", addr_spec=from_addr)
        message["To"] = Address(display_name=to_name or "", addr_spec=to_addr)
        message["Subject"] = subject
        message["Date"] = date if date.tzinfo else date.replace(tzinfo=dt.UTC)
        message["Message-ID"] = message_id
        for name, value in (headers or {}).items():
            if name.lower() not in _RESERVED:
                message[name] = value
        message.set_content(text, cte=body_transfer_encoding(text))
        if html:
            message.add_alternative(html, subtype="html", cte=body_transfer_encoding(html))
        for filename, data in files:
            message.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    except (ValueError, LookupError, email.errors.MessageError) as exc:
        raise PermanentError(f"the email cannot be built: {exc}") from None
    return message


def body_transfer_encoding(body: str) -> str | None:
    """The transfer encoding of a text part: the body as it is (``7bit`` for ASCII,
    ``8bit`` for UTF-8) when every line fits SMTP's 998 octets, else None (the library
    picks quoted-printable or base64).

    Left to choose, the library quotes any part with a line over 78 characters (every
    HTML part: its inline styles and links), which doubles each umlaut and took half
    the time of building an email. 78 is the recommended width of header lines; body
    lines may be 998 octets long (RFC 5322 2.1.1). A server without 8BITMIME still gets
    7-bit data: ``Session.send`` has the generator re-encode 8bit parts for it."""
    encoded = body.encode("utf-8", "surrogateescape")
    if max(map(len, encoded.splitlines()), default=0) > MAX_LINE_OCTETS:
        return None
    return "7bit" if encoded.isascii() else "8bit"


def _read_attachment(path: str) -> bytes:
    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise PermanentError(f"attachment {path} cannot be read: {exc.strerror}") from None
    if size > MAX_ATTACHMENT_BYTES:
        raise PermanentError(f"attachment {path} is larger than 10 MB ({size} bytes)")
    return file.read_bytes()


def _tls_context(target: SmtpTarget) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if target.cafile:
        context.load_verify_locations(cafile=target.cafile)
    return context


def _connect(target: SmtpTarget) -> smtplib.SMTP:
    if target.security == "tls":
        client = smtplib.SMTP_SSL(
            target.host, target.port, timeout=target.timeout, context=_tls_context(target)
        )
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=target.timeout)
    try:
        client.ehlo()
        if target.security == "starttls":
            client.starttls(context=_tls_context(target))
            client.ehlo()
        if target.username:
            client.login(target.username, target.password or "")
    except BaseException:
        client.close()
        raise
    return client


def classify(exc: BaseException) -> SendError:
    """The ``SendError`` an exception from smtplib or the socket layer amounts to."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items()
        )
        kind = PermanentError if codes and all(500 <= c < 600 for c in codes) else TemporaryError
        return kind(f"recipient refused: {detail}")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return TemporaryError(
            f"SMTP login rejected ({exc.smtp_code} {_text(exc.smtp_error)}); check SMTP_URL"
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = PermanentError if 500 <= exc.smtp_code < 600 else TemporaryError
        return kind(f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return TemporaryError(f"SMTP server lacks a feature SMTP_URL asks for: {exc}")
    if isinstance(exc, TimeoutError):
        return TemporaryError(f"SMTP timeout: {exc or 'no answer in time'}")
    if isinstance(exc, OSError):  # refused, reset, DNS, TLS, SMTPServerDisconnected
        return TemporaryError(f"SMTP connection failed: {type(exc).__name__}: {exc}")
    return TemporaryError(f"unexpected error while sending: {type(exc).__name__}: {exc}")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Session:
    """One SMTP connection for several messages (a batch): ``with Session(target) as s:
    s.send(message, envelope_from=..., to_addr=...)``. Errors come out as
    ``TemporaryError`` / ``PermanentError``; after a permanent refusal the connection
    stays usable (smtplib resets the transaction), after a temporary one the caller
    should end the session."""

    def __init__(self, target: SmtpTarget):
        self.target = target
        self.client: smtplib.SMTP | None = None

    def __enter__(self) -> Session:
        try:
            self.client = _connect(self.target)
        except Exception as exc:
            raise classify(exc) from exc
        return self

    def send(self, message: EmailMessage, *, envelope_from: str, to_addr: str) -> None:
        """Returns once the server accepted the message (its 250 after the data).

        Parts the library chose to send as 8bit (UTF-8 text) go as they are to a
        server that announced 8BITMIME, declared with BODY=8BITMIME; for one that
        did not, the generator re-encodes them (7bit policy: base64)."""
        options: tuple[str, ...] = ()
        if self.client.has_extn("8bitmime"):
            # send_message adds it itself when an address needs SMTPUTF8
            options = ("BODY=8BITMIME",) if (envelope_from + to_addr).isascii() else ()
        elif message.policy.cte_type != "7bit":
            message.policy = _SEVEN_BIT  # only the generator's policy; the parts keep theirs
        try:
            self.client.send_message(message, envelope_from, [to_addr], mail_options=options)
        except smtplib.SMTPNotSupportedError as exc:  # an address that needs SMTPUTF8
            raise PermanentError(f"the server cannot take this email: {exc}") from exc
        except Exception as exc:
            raise classify(exc) from exc

    def __exit__(self, *exc_info) -> None:
        try:
            self.client.quit()
        except Exception:  # every message is accepted or refused already; QUIT is courtesy
            self.client.close()
