"""Building a MIME message and handing it to the SMTP server named by ``SMTP_URL``.

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
(sender, recipient or data refused) is ``PermanentError``; 4xx replies, refused
or dropped connections, timeouts and TLS errors are ``TemporaryError``. A
rejected login or a server without STARTTLS is a configuration fault that hits
every email alike, so it is temporary too: once the configuration is fixed, the
queue drains instead of every email having been marked failed.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import format_datetime, formataddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from . import mime

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # domain.md 4.6


def dot_stuffed(message: bytes) -> bytes:
    """``message`` with a dot added before every line that starts with one (RFC 5321
    4.5.2), as smtplib's ``data()`` does with a regular expression: for an inquiry of
    8 KB, 6 µs instead of 30."""
    stuffed = message.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def _data_block(message: bytes) -> bytes:
    """``message`` as the data of an SMTP transaction: dot-stuffed, ended by CRLF.CRLF."""
    body = dot_stuffed(message)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


@dataclass(frozen=True)
class Outgoing:
    """One message for ``Session.send_all``: ``build()`` returns its bytes (or raises
    ``PermanentError``), called only when its turn comes."""

    build: Callable[[], bytes]
    sender: str
    recipient: str


class SendError(Exception):
    """Sending failed; ``str(exc)`` is what staff see in ``fehlermeldung``."""


class TemporaryError(SendError):
    """Worth retrying later: 4xx, connection or TLS trouble, timeouts."""


class PermanentError(SendError):
    """Retrying will not help: 5xx for this message, or an unusable attachment."""


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


def _address(name: str | None, addr: str) -> str:
    return formataddr((name or "", addr), charset="utf-8")


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
    eight_bit: bool = False,
) -> bytes:
    """The MIME bytes: multipart/alternative (text, then HTML) in UTF-8, wrapped in
    multipart/mixed when files are attached (see ``mime.py``). ``date`` is naive UTC
    or aware. ``eight_bit``: text parts may go as 8bit (``Session.eight_bit``)."""
    fields = [
        ("From", _address(from_name, from_addr)),
        ("To", _address(to_name, to_addr)),
        ("Subject", subject),
        ("Date", format_datetime(date if date.tzinfo else date.replace(tzinfo=dt.UTC))),
        ("Message-ID", message_id),
    ]
    reserved = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type"}
    fields += [(n, v) for n, v in (headers or {}).items() if n.lower() not in reserved]
    files = [(Path(path).name, _read_attachment(path)) for path in attachments]
    try:
        return mime.message_bytes(fields, text, html, files, eight_bit=eight_bit)
    except mime.HeaderError as exc:
        raise PermanentError(str(exc)) from None


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
    s.send(message, envelope_from)``. Errors come out as ``TemporaryError`` /
    ``PermanentError``; after a connection-level error the session is unusable.

    ``eight_bit`` tells whether the server announced 8BITMIME: build the messages
    with ``build_message(eight_bit=session.eight_bit)``; ``send`` then declares
    BODY=8BITMIME in the envelope. ``pipelining``: the server announced PIPELINING
    (RFC 2920), so ``send`` writes MAIL, RCPT and DATA at once and then reads their
    three replies, two round trips per message instead of four; ``send_all`` also
    writes the next message's envelope behind the current message's data: one round
    trip per message."""

    def __init__(self, target: SmtpTarget):
        self.target = target
        self.client = None
        self.eight_bit = False
        self.pipelining = False
        # The server answered DATA with 354 and waits for a message we have not sent:
        # the session must then end by closing the connection, which makes the server
        # drop the transaction. QUIT would be read as message text, and a lone dot
        # would deliver an empty message.
        self._awaiting_data = False

    def __enter__(self) -> Session:
        try:
            self.client = _connect(self.target)
        except Exception as exc:
            raise classify(exc) from exc
        self.eight_bit = self.client.has_extn("8bitmime")
        self.pipelining = self.client.has_extn("pipelining")
        return self

    def send(self, message: bytes, *, envelope_from: str, to_addr: str) -> None:
        """Returns once the server accepted the data (its 250 after DATA)."""
        options = ("BODY=8BITMIME",) if self.eight_bit else ()
        try:
            if self.pipelining:
                self._send_pipelined(message, envelope_from, to_addr)
            else:
                self.client.sendmail(envelope_from, [to_addr], message, mail_options=options)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            self.client.rset()  # the connection stays usable for the next message
            raise classify(exc) from exc
        except Exception as exc:
            raise classify(exc) from exc

    def _send_pipelined(self, message: bytes, sender: str, recipient: str) -> None:
        """smtplib's ``sendmail`` for one recipient, with the envelope pipelined; all
        three replies are read before deciding, so the conversation stays in step."""
        item = Outgoing(lambda: message, sender, recipient)
        self.client.send(self._envelope(item))
        refusal = self._envelope_replies(item)
        if refusal is not None:
            self.client.rset()
            raise refusal
        self.client.send(_data_block(message))
        code, reply = self.client.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

    def send_all(self, outgoing: Sequence[Outgoing]) -> Iterator[tuple[int, SendError | None]]:
        """Send ``outgoing`` in order, yielding ``(index, None)`` as soon as the server
        accepted a message (its 250 after the data, so the caller can record it at
        once) and ``(index, PermanentError)`` when the message could not be built or
        the server refused it for good. Anything else, a temporary refusal or a broken
        connection, is raised as ``TemporaryError``; then every message not yet yielded
        is to be sent again (the one whose data was on its way may have arrived).

        With PIPELINING the next envelope (MAIL, RCPT, DATA) travels in the same write
        as the current message's data, as RFC 2920 allows message content as the first
        part of a group: the reply to the data and the three replies to the envelope
        come back together, one round trip per message instead of two. Each message
        is built just before its envelope is written, so one that cannot be built
        never opens a transaction."""
        if not self.pipelining:
            for index, item in enumerate(outgoing):
                try:
                    self.send(item.build(), envelope_from=item.sender, to_addr=item.recipient)
                except PermanentError as error:
                    yield index, error
                    continue
                yield index, None
            return
        try:
            yield from self._send_all_pipelined(outgoing)
        except SendError:
            raise
        except Exception as exc:
            raise classify(exc) from exc

    def _send_all_pipelined(self, outgoing: Sequence[Outgoing]):
        client = self.client
        built: dict[int, bytes] = {}
        unbuildable: list[tuple[int, SendError]] = []  # yielded in index order

        def build_next(start: int) -> tuple[bytes, int | None]:
            """The envelope and index of the first message from ``start`` on that can
            be built; those that cannot go to ``unbuildable``."""
            for index in range(start, len(outgoing)):
                try:
                    message, head = outgoing[index].build(), self._envelope(outgoing[index])
                except PermanentError as error:
                    unbuildable.append((index, error))
                    continue
                built[index] = message
                return head, index
            return b"", None

        def open_next(start: int) -> int | None:
            head, index = build_next(start)
            if index is not None:
                client.send(head)
                self._awaiting_data = True
            return index

        current = open_next(0)  # the message whose envelope was written, replies unread
        sent_data: int | None = None  # the message whose data was written, reply unread
        while True:
            if sent_data is not None:
                code, reply = client.getreply()
                error = None if code == 250 else classify(smtplib.SMTPDataError(code, reply))
                if error is not None and not isinstance(error, PermanentError):
                    raise error
                yield sent_data, error
                sent_data = None
            yield from unbuildable
            unbuildable.clear()
            if current is None:
                return
            refusal = self._envelope_replies(outgoing[current])
            if refusal is not None:
                self._awaiting_data = False
                built.pop(current)
                client.rset()
                if not isinstance(refusal, PermanentError):
                    raise refusal
                yield current, refusal
                current = open_next(current + 1)
                continue
            data = _data_block(built.pop(current))
            sent_data = current
            head, current = build_next(current + 1)
            client.send(data + head)  # this data, then the next envelope: one write
            self._awaiting_data = current is not None

    def _envelope(self, item: Outgoing) -> bytes:
        """MAIL, RCPT and DATA for ``item``, as smtplib would write them."""
        extra = " BODY=8BITMIME" if self.eight_bit else ""
        commands = (
            f"MAIL FROM:{smtplib.quoteaddr(item.sender)}{extra}\r\n"
            f"RCPT TO:{smtplib.quoteaddr(item.recipient)}\r\nDATA\r\n"
        )
        if not commands.isascii():  # SMTPUTF8 is not used
            raise PermanentError(f"address not in ASCII: {item.sender} -> {item.recipient}")
        return commands.encode("ascii")

    def _envelope_replies(self, item: Outgoing) -> SendError | None:
        """Read the replies to MAIL, RCPT and DATA; the refusal, if any. After a
        refusal the conversation is back in step (an unexpected 354 is answered with
        a lone dot: with no accepted recipient nothing is delivered)."""
        client = self.client
        (mail_code, mail_reply), (rcpt_code, rcpt_reply), (data_code, data_reply) = (
            client.getreply(),
            client.getreply(),
            client.getreply(),
        )
        if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
            client.send(b".\r\n")
            client.getreply()
        if mail_code != 250:
            return classify(smtplib.SMTPSenderRefused(mail_code, mail_reply, item.sender))
        if rcpt_code not in (250, 251):
            return classify(
                smtplib.SMTPRecipientsRefused({item.recipient: (rcpt_code, rcpt_reply)})
            )
        if data_code != 354:
            return classify(smtplib.SMTPDataError(data_code, data_reply))
        return None

    def __exit__(self, *exc_info) -> None:
        if self._awaiting_data:  # see __init__
            self.client.close()
            return
        try:
            self.client.quit()
        except Exception:  # every message is accepted or refused already; QUIT is courtesy
            self.client.close()
