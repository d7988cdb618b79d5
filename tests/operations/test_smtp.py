"""Queueing and transmitting Email rows through a real SMTP server (aiosmtpd on loopback).

What arrives is read back with the standard parser and checked for what a mail
client sees (headers, parts, text, no defects); how the library encodes it is its
own business."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from db.models import Email, OutboxItem, Therapeutenanfrage, Therapist, utcnow
from operations.emailing import headers as email_headers
from operations.emailing import queue, render, sending, smtp
from operations.emailing.data import PatientInfo, TherapistInfo
from psymatch import settings
from psymatch.domain import tokens
from psymatch.ports import free_port
from workers import email_actors as actors


class Recorder:
    """An aiosmtpd handler that keeps what it accepted and can refuse on demand."""

    def __init__(self):
        self.envelopes = []
        self.data_reply = None  # e.g. "451 4.3.0 try again later"
        self.rcpt_reply = None
        self.peers = set()  # (address, port) of every connection that got as far as RCPT

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.peers.add(session.peer)
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 OK queued"

    def messages(self):
        return [
            email.message_from_bytes(e.original_content, policy=email.policy.default)
            for e in self.envelopes
        ]


@pytest.fixture
def smtp_settings():
    before = settings.get()
    yield
    settings.override(SMTP_URL=before.SMTP_URL, SMTP_TIMEOUT_S=before.SMTP_TIMEOUT_S)


def start(handler, url_template: str, **controller_args) -> Controller:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **controller_args)
    controller.start()
    settings.override(SMTP_URL=url_template.format(port=port), SMTP_TIMEOUT_S=5.0)
    return controller


@pytest.fixture
def server(smtp_settings):
    recorder = Recorder()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    yield recorder
    controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made here, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


def make_anfrage_and_therapist(n: int = 1):
    therapist = Therapist.create(
        external_id=f"T{n}",
        anrede="Herr",
        geschlecht="männlich",
        titel="Dr.",
        vorname="Jörg",
        nachname="Müller",
        email="praxis.mueller@example.org",
    )
    anfrage = Therapeutenanfrage.create(therapist=therapist, anfragegroesse=1)
    return therapist, anfrage


def rendered_inquiry(anfrage_id: int) -> render.RenderedEmail:
    info = TherapistInfo(1, "Herr", "Dr.", "Jörg", "Müller", email="praxis.mueller@example.org")
    patient = PatientInfo(
        9, dt.date(1990, 1, 1), "weiblich", ("Einsamkeit",), "TK", False, None, True, {}
    )
    return render.render_inquiry(anfrage_id, info, [patient], today=dt.date(2025, 8, 19))


@pytest.fixture
def queued(clean_db):
    therapist, anfrage = make_anfrage_and_therapist()
    row, created = queue.queue_email(rendered_inquiry(anfrage.id), therapist_id=therapist.id)
    assert created
    return row


# --- queueing ---------------------------------------------------------------------------


def test_queue_email_is_idempotent_per_key(clean_db):
    therapist, anfrage = make_anfrage_and_therapist()
    rendered = rendered_inquiry(anfrage.id)
    first, created = queue.queue_email(rendered, therapist_id=therapist.id)
    again, created_again = queue.queue_email(rendered, therapist_id=therapist.id)
    assert created and not created_again and again.id == first.id
    assert Email.select().count() == 1
    assert first.status == "In_Warteschlange" and first.in_warteschlange_am is not None
    assert first.idempotenz_schluessel == f"anfrage:{anfrage.id}"
    assert first.therapeutenanfrage_id == anfrage.id
    assert (first.empfaenger_email, first.empfaenger_name) == (
        "praxis.mueller@example.org",
        "Dr. Jörg Müller",
    )
    key = queue.outbox_send(first)
    assert queue.outbox_send(first) == key and OutboxItem.select().count() == 1
    item = OutboxItem.get(OutboxItem.dedupe_key == key)
    assert (item.task, item.payload, item.dedupe_key) == (
        "send_email",
        {"email_id": first.id},
        f"send_email:anfrage:{anfrage.id}",
    )


def test_queue_email_inside_a_failing_transaction_leaves_nothing(clean_db):
    therapist, anfrage = make_anfrage_and_therapist()
    with pytest.raises(RuntimeError), clean_db.atomic():
        queue.queue_email(rendered_inquiry(anfrage.id), therapist_id=therapist.id)
        raise RuntimeError("the operation around it failed")
    assert Email.select().count() == 0


# --- transmitting -------------------------------------------------------------------------


def test_sent_email_arrives_once_with_its_headers(server, queued):
    assert sending.transmit(queued.id) == "sent"
    assert sending.transmit(queued.id) == "skipped"
    assert len(server.envelopes) == 1
    envelope = server.envelopes[0]
    assert envelope.mail_from == settings.get().MAIL_FROM
    assert envelope.rcpt_tos == ["praxis.mueller@example.org"]
    message = server.messages()[0]
    anfrage_id = queued.therapeutenanfrage_id
    assert message["Subject"] == f"Suche Psychotherapieplätze - Ref: A{anfrage_id}"
    assert message["To"].addresses[0].display_name == "Dr. Jörg Müller"
    assert message["From"].addresses[0].addr_spec == settings.get().MAIL_FROM
    assert (
        message["Message-ID"]
        == queued.message_id
        == email_headers.message_id("anfrage", anfrage_id)
    )
    assert tokens.parse_message_id(str(message["Message-ID"])) == anfrage_id
    assert tokens.parse_reply_address(str(message["Reply-To"])) == anfrage_id
    assert message["Date"].datetime is not None
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"
    assert "Sehr geehrter Herr Dr. Müller," in text.get_content()
    assert "<p>Sehr geehrter Herr Dr. Müller,</p>" in html.get_content()
    row = Email.get_by_id(queued.id)
    assert row.status == "Gesendet" and row.gesendet_am is not None and row.fehlermeldung is None


def test_the_actor_sends_a_twice_delivered_message_once(server, queued, stub_broker, stub_worker):
    actors.send_email.send(queued.id)
    actors.send_email.send(queued.id)
    stub_broker.join(actors.send_email.queue_name, timeout=20_000)
    stub_worker.join()
    assert len(server.envelopes) == 1
    assert Email.get_by_id(queued.id).status == "Gesendet"


def test_451_puts_the_email_back_in_the_queue_and_asks_for_a_retry(server, queued):
    server.data_reply = "451 4.3.0 Mailbox temporarily unavailable"
    with pytest.raises(sending.RetryLater, match="451"):
        sending.transmit(queued.id)
    row = Email.get_by_id(queued.id)
    assert row.status == "In_Warteschlange" and row.wiederholungsanzahl == 1
    assert "451" in row.fehlermeldung
    server.data_reply = None
    assert sending.transmit(queued.id) == "sent"
    assert len(server.envelopes) == 1


def test_550_fails_the_email_without_retry(server, queued):
    server.data_reply = "550 5.7.1 Message rejected as spam"
    assert sending.transmit(queued.id) == "failed"
    row = Email.get_by_id(queued.id)
    assert row.status == "Fehlgeschlagen" and "550" in row.fehlermeldung
    assert row.wiederholungsanzahl == 1 and row.gesendet_am is None
    assert sending.transmit(queued.id) == "skipped"  # staff must re-queue it
    assert server.envelopes == []


def test_refused_recipient_is_permanent(server, queued):
    server.rcpt_reply = "550 5.1.1 No such user"
    assert sending.transmit(queued.id) == "failed"
    assert "No such user" in Email.get_by_id(queued.id).fehlermeldung


def test_server_down_is_temporary(smtp_settings, queued):
    settings.override(SMTP_URL=f"smtp://127.0.0.1:{free_port()}", SMTP_TIMEOUT_S=2.0)
    with pytest.raises(sending.RetryLater, match="connection failed"):
        sending.transmit(queued.id)
    row = Email.get_by_id(queued.id)
    assert row.status == "In_Warteschlange" and row.wiederholungsanzahl == 1


def test_silent_server_times_out_as_temporary(smtp_settings, queued):
    with socket.socket() as listener:  # accepts TCP, never says hello
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        settings.override(SMTP_URL=f"smtp://127.0.0.1:{port}", SMTP_TIMEOUT_S=0.5)
        with pytest.raises(sending.RetryLater, match="(?i)time"):
            sending.transmit(queued.id)
    assert Email.get_by_id(queued.id).status == "In_Warteschlange"


def test_too_many_temporary_failures_fail_the_email(server, queued):
    Email.update(wiederholungsanzahl=sending.MAX_TEMPORARY_FAILURES - 1).execute()
    server.data_reply = "421 4.4.2 Connection dropped"
    assert sending.transmit(queued.id) == "failed"
    row = Email.get_by_id(queued.id)
    assert row.status == "Fehlgeschlagen" and "gave up after 10" in row.fehlermeldung


def test_stuck_rows_are_reclaimed_and_then_sent(server, queued):
    long_ago = utcnow() - dt.timedelta(hours=1)
    Email.update(status="Wird_gesendet", updated_at=long_ago).execute()
    assert sending.transmit(queued.id) == "skipped"  # another worker "owns" it
    recent_id = queue.queue_email(
        render.RenderedEmail(
            "konflikt", queued.therapeutenanfrage_id, "S", "t", "h", {"Message-ID": "<x@y>"}
        ),
        therapist_id=queued.therapist_id,
        to_email="a@b.de",
    )[0].id
    Email.update(status="Wird_gesendet", updated_at=utcnow()).where(Email.id == recent_id).execute()
    assert sending.reclaim_stuck(dt.timedelta(minutes=15)) == [queued.id]
    row = Email.get_by_id(queued.id)
    assert row.status == "In_Warteschlange" and "stuck" in row.fehlermeldung
    assert Email.get_by_id(recent_id).status == "Wird_gesendet"
    assert sending.transmit(queued.id) == "sent"
    assert len(server.envelopes) == 1


def test_queued_ids_lists_old_queued_rows(queued):
    assert sending.queued_ids(dt.timedelta(minutes=5)) == []
    later = utcnow() + dt.timedelta(minutes=10)
    assert sending.queued_ids(dt.timedelta(minutes=5), now=later) == [queued.id]


def test_concurrent_transmits_send_once(server, queued):
    results = []

    def run():
        from db import database

        database.db.connect(reuse_if_open=True)
        try:
            results.append(sending.transmit(queued.id))
        finally:
            database.db.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["sent", "skipped", "skipped", "skipped"]
    assert len(server.envelopes) == 1


def test_attachments_are_sent_and_a_missing_one_fails(server, queued, tmp_path):
    form = tmp_path / "Anamnesebogen.pdf"
    form.write_bytes(b"%PDF-1.4\n% test\n")
    Email.update(attachments=[str(form)]).execute()
    assert sending.transmit(queued.id) == "sent"
    message = server.messages()[0]
    assert message.get_content_type() == "multipart/mixed"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "Anamnesebogen.pdf"
    assert attachment.get_content() == b"%PDF-1.4\n% test\n"
    Email.update(status="In_Warteschlange", attachments=[str(tmp_path / "gone.pdf")]).execute()
    assert sending.transmit(queued.id) == "failed"
    assert "gone.pdf" in Email.get_by_id(queued.id).fehlermeldung


# --- TLS and AUTH ---------------------------------------------------------------------------


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"psymatch" and auth_data.password == b"s3cr=t"
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


def test_starttls_and_auth(smtp_settings, certificate, queued):
    cert_path, server_context = certificate
    recorder = Recorder()
    controller = start(
        recorder,
        "smtp+starttls://psymatch:s3cr%3Dt@127.0.0.1:{port}?cafile=" + str(cert_path),
        tls_context=server_context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    try:
        assert sending.transmit(queued.id) == "sent"
        assert len(recorder.envelopes) == 1
        Email.update(status="In_Warteschlange").execute()
        wrong = settings.get().SMTP_URL.replace("s3cr%3Dt", "wrong")
        settings.override(SMTP_URL=wrong)
        with pytest.raises(sending.RetryLater, match="login rejected"):
            sending.transmit(queued.id)
        # an unknown certificate is not trusted
        settings.override(SMTP_URL=wrong.split("?")[0].replace("wrong", "s3cr%3Dt"))
        with pytest.raises(sending.RetryLater, match="SSL|certificate"):
            sending.transmit(queued.id)
    finally:
        controller.stop()
    assert len(recorder.envelopes) == 1


def test_implicit_tls(smtp_settings, certificate, queued):
    cert_path, server_context = certificate
    recorder = Recorder()
    controller = start(
        recorder, "smtps://127.0.0.1:{port}?cafile=" + str(cert_path), ssl_context=server_context
    )
    try:
        assert sending.transmit(queued.id) == "sent"
    finally:
        controller.stop()
    assert len(recorder.envelopes) == 1


@pytest.mark.parametrize(
    "url,expected",
    [
        ("smtp://127.0.0.1:8025", ("127.0.0.1", 8025, "plain", None, None)),
        ("smtp://mail.example:587?starttls=true", ("mail.example", 587, "starttls", None, None)),
        ("smtp+starttls://u%40x:p%3A@mail.example", ("mail.example", 587, "starttls", "u@x", "p:")),
        ("smtps://u:p@mail.example", ("mail.example", 465, "tls", "u", "p")),
        ("smtp://mail.example", ("mail.example", 25, "plain", None, None)),
    ],
)
def test_smtp_urls(url, expected):
    target = smtp.parse_smtp_url(url, timeout=3)
    assert (target.host, target.port, target.security, target.username, target.password) == (
        expected
    )
    assert target.timeout == 3


@pytest.mark.parametrize("url", ["http://x", "smtp://", "smtp://host:99999"])
def test_bad_smtp_urls(url):
    with pytest.raises(smtp.SmtpUrlError):
        smtp.parse_smtp_url(url)


# --- what arrives -----------------------------------------------------------------------


def content(part) -> str:
    """A text part's content as a mail client shows it (lines arrive CRLF-terminated,
    and the parser keeps 8bit lines as they came)."""
    return part.get_content().replace("\r\n", "\n")


def assert_clean(message) -> None:
    """The parser found nothing wrong, in the message or any of its parts."""
    for part in message.walk():
        assert part.defects == [], (part.get_content_type(), part.defects)


def test_a_delivered_inquiry_parses_without_defects_with_both_alternatives(server, queued):
    assert sending.transmit(queued.id) == "sent"
    (message,) = server.messages()
    assert_clean(message)
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    body = Email.get_by_id(queued.id).inhalt.get()
    assert content(message.get_body(("plain",))) == body.inhalt_text
    assert content(message.get_body(("html",))) == body.inhalt_html
    raw = server.envelopes[0].original_content
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))  # RFC 5322 2.1.1


def test_non_ascii_subject_and_display_names_round_trip(server, queued):
    subject = "Rückfrage – Ärztin bestätigt: Grüße 😀 " + "Wartezeit, Kassensitz? " * 6
    sender_name = "Vermittlungsstelle Süd – Jördis Öztürk"
    Email.update(betreff=subject, absender_name=sender_name).execute()
    assert sending.transmit(queued.id) == "sent"
    (message,) = server.messages()
    assert_clean(message)
    assert message["Subject"] == subject
    assert message["From"].addresses[0].display_name == sender_name
    assert message["To"].addresses[0].display_name == "Dr. Jörg Müller"
    assert server.envelopes[0].original_content.split(b"\r\n\r\n")[0].isascii()


def test_eight_bit_data_is_declared_to_a_server_that_takes_it(server, queued):
    from db.models import EmailInhalt

    EmailInhalt.update(inhalt_text="Grüße\n", inhalt_html="<p>Grüße</p>\n").execute()
    assert sending.transmit(queued.id) == "sent"
    (envelope,) = server.envelopes
    assert not envelope.original_content.isascii()  # the library chose 8bit for these parts
    assert "BODY=8BITMIME" in envelope.mail_options
    (message,) = server.messages()
    assert_clean(message)
    assert content(message.get_body(("plain",))) == "Grüße\n"


@pytest.mark.parametrize(
    "body, expected",
    [
        ("Hallo\n" + "x" * 998 + "\n", "7bit"),  # ASCII: as it is, up to 998 octets a line
        ("<p style='color: #222222'>" + "Grüße, " * 100 + "</p>\n", "8bit"),  # 930 octets
        ("Grüße\n" + "ü" * 499 + "\n", "8bit"),  # 998 octets
        ("Grüße\n" + "ü" * 500 + "\n", None),  # 500 characters, but 1000 octets
        ("x" * 999 + "\n", None),
    ],
)
def test_a_body_goes_as_it_is_unless_a_line_is_longer_than_smtp_allows(body, expected):
    assert smtp.body_transfer_encoding(body) == expected
    message = smtp.build_message(
        from_addr="vermittlung@example.org", from_name="Vermittlung",
        to_addr="praxis@example.org", to_name=None, subject="Test", text=body, html=body,
        message_id="<t-1@example.org>", date=dt.datetime(2026, 1, 5, 8),
    )  # fmt: skip
    encodings = {part["Content-Transfer-Encoding"] for part in message.iter_parts()}
    # left to the library, a line over 998 octets is quoted-printable or base64
    assert encodings == {expected} if expected else encodings <= {"quoted-printable", "base64"}
    raw = message.as_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert_clean(parsed)
    assert [content(part) for part in parsed.iter_parts()] == [body, body]


def test_lines_starting_with_a_dot_and_overlong_lines_arrive_intact(server, queued):
    text = "Zeile\n.Punkt am Anfang\n.\n..zwei Punkte\n" + "x" * 3000 + "\nEnde ä\n"
    from db.models import EmailInhalt

    EmailInhalt.update(inhalt_text=text).where(EmailInhalt.email == queued.id).execute()
    assert sending.transmit(queued.id) == "sent"
    (message,) = server.messages()
    assert_clean(message)
    assert content(message.get_body(("plain",))) == text


def test_a_follow_up_threads_under_the_inquiry_and_carries_the_reply_address(server, clean_db):

    therapist, anfrage = make_anfrage_and_therapist()
    rendered = render.RenderedEmail(
        "erinnerung",
        anfrage.id,
        "Erinnerung: Therapieanfrage - Ref: A1",
        "Text\n",
        "<p>Text</p>\n",
        email_headers.standard_headers("erinnerung", anfrage.id),
        to_email="praxis@example.org",
    )
    row, _ = queue.queue_email(rendered, therapist_id=therapist.id)
    assert sending.transmit(row.id) == "sent"
    (message,) = server.messages()
    inquiry = email_headers.message_id("anfrage", anfrage.id)
    assert message["In-Reply-To"] == message["References"] == inquiry
    assert message["Message-ID"] == email_headers.message_id("erinnerung", anfrage.id)
    assert tokens.parse_reply_address(str(message["Reply-To"])) == anfrage.id


class Without8BitMime(Recorder):
    """A server that does not announce 8BITMIME (aiosmtpd's EHLO hook drops it)."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [line for line in responses if "8BITMIME" not in line.upper()]


def test_a_server_without_8bitmime_gets_seven_bit_data_that_reads_the_same(smtp_settings, queued):
    from db.models import EmailInhalt

    # short lines: the library would send these parts as 8bit to a server taking it
    text, html = "Sehr geehrter Herr Dr. Müller,\nGrüße\n", "<p>Grüße</p>\n"
    EmailInhalt.update(inhalt_text=text, inhalt_html=html).execute()
    recorder = Without8BitMime()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    try:
        assert sending.transmit(queued.id) == "sent"
    finally:
        controller.stop()
    (envelope,) = recorder.envelopes
    assert envelope.original_content.isascii()
    assert "BODY=8BITMIME" not in envelope.mail_options
    (message,) = recorder.messages()
    assert_clean(message)
    assert content(message.get_body(("plain",))) == text
    assert content(message.get_body(("html",))) == html


# --- batches ----------------------------------------------------------------------------


class Refusing(Recorder):
    """Refuses by address, so one batch meets every case: senders ``refused-sender@``
    (553), recipients ``nobody@`` (550) and ``busy@`` (450), data for ``spam@`` (554)."""

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if address.startswith("refused-sender@"):
            return "553 5.7.1 sender refused"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("busy@"):
            return "450 4.2.0 mailbox busy"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        if envelope.rcpt_tos[0].startswith("spam@"):
            return "554 5.6.0 content refused"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def refusing(smtp_settings):
    recorder = Refusing()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    yield recorder
    controller.stop()


def queue_batch(addresses: list[str]) -> list[Email]:
    rows = []
    for n, address in enumerate(addresses):
        therapist, anfrage = make_anfrage_and_therapist(n + 1)
        rendered = rendered_inquiry(anfrage.id)
        rows.append(queue.queue_email(rendered, therapist_id=therapist.id, to_email=address)[0])
    return rows


def delivered_to(recorder) -> list[str]:
    return [e.rcpt_tos[0] for e in recorder.envelopes]


def test_a_batch_goes_over_one_connection_each_email_once(refusing, clean_db):
    rows = queue_batch([f"praxis{n}@example.org" for n in range(6)])
    counts = sending.transmit_batch([row.id for row in rows])
    assert counts == {"sent": 6, "failed": 0, "skipped": 0}
    assert len(refusing.peers) == 1
    assert delivered_to(refusing) == [f"praxis{n}@example.org" for n in range(6)]
    for message in refusing.messages():
        assert_clean(message)
    assert {Email.get_by_id(row.id).status for row in rows} == {"Gesendet"}
    again = sending.transmit_batch([row.id for row in rows])  # a repeated batch message
    assert again == {"sent": 0, "failed": 0, "skipped": 6}
    assert len(refusing.envelopes) == 6


def test_permanent_refusals_and_unbuildable_emails_fail_alone_and_the_batch_goes_on(
    refusing, clean_db, tmp_path
):
    addresses = [
        "praxis0@example.org",
        "nobody@example.org",  # recipient refused, 550
        "praxis2@example.org",  # sender refused, 553
        "spam@example.org",  # data refused, 554
        "praxis4@example.org",  # a line break in the subject: cannot be built
        "praxis5@example.org",  # its attachment is gone: cannot be built
        "praxis6@example.org",
    ]
    rows = queue_batch(addresses)
    Email.update(absender_email="refused-sender@example.org").where(
        Email.id == rows[2].id
    ).execute()
    Email.update(betreff="Hallo\r\nBcc: evil@example.org").where(Email.id == rows[4].id).execute()
    Email.update(attachments=[str(tmp_path / "gone.pdf")]).where(Email.id == rows[5].id).execute()
    counts = sending.transmit_batch([row.id for row in rows])
    assert counts == {"sent": 2, "failed": 5, "skipped": 0}
    assert delivered_to(refusing) == ["praxis0@example.org", "praxis6@example.org"]
    assert len(refusing.peers) == 1
    after = [Email.get_by_id(row.id) for row in rows]
    assert [row.status for row in after] == ["Gesendet"] + ["Fehlgeschlagen"] * 5 + ["Gesendet"]
    reasons = [row.fehlermeldung for row in after[1:6]]
    assert "550" in reasons[0] and "no such mailbox" in reasons[0]
    assert "553" in reasons[1] and "554" in reasons[2]
    assert "linefeed or carriage return" in reasons[3]
    assert "gone.pdf" in reasons[4]
    assert "example.org" not in "".join(reasons)  # addresses are redacted
    assert all("Bcc" not in m.as_string() for m in refusing.messages())


def test_a_temporary_refusal_ends_the_batch_and_the_rest_is_sent_on_retry(refusing, clean_db):
    rows = queue_batch(["praxis0@example.org", "busy@example.org", "praxis2@example.org"])
    with pytest.raises(sending.RetryLater, match="450"):
        sending.transmit_batch([row.id for row in rows])
    after = [Email.get_by_id(row.id) for row in rows]
    assert [row.status for row in after] == ["Gesendet", "In_Warteschlange", "In_Warteschlange"]
    assert [row.wiederholungsanzahl for row in after] == [0, 1, 1]
    assert "450" in after[1].fehlermeldung
    assert delivered_to(refusing) == ["praxis0@example.org"]
    Email.update(empfaenger_email="praxis1@example.org").where(Email.id == rows[1].id).execute()
    counts = sending.transmit_batch([row.id for row in rows])  # Dramatiq's retry
    assert counts == {"sent": 2, "failed": 0, "skipped": 1}
    assert delivered_to(refusing) == [f"praxis{n}@example.org" for n in range(3)]


class Dropping(Recorder):
    """Drops the connection (no reply) at the ``drop_at``-th message's data, once."""

    drop_at = 2
    seen = 0

    async def handle_DATA(self, server, session, envelope):
        self.seen += 1
        if self.seen == self.drop_at:
            server.transport.abort()
            return "421 4.3.0 closing"  # never reaches the client
        return await super().handle_DATA(server, session, envelope)


def test_a_connection_broken_mid_batch_leaves_the_unsent_emails_claimable(smtp_settings, clean_db):
    recorder = Dropping()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    try:
        rows = queue_batch([f"praxis{n}@example.org" for n in range(4)])
        with pytest.raises(sending.RetryLater, match="connection|closed|disconnect"):
            sending.transmit_batch([row.id for row in rows])
        statuses = [Email.get_by_id(row.id).status for row in rows]
        assert statuses == ["Gesendet"] + ["In_Warteschlange"] * 3
        assert sending.transmit_batch([row.id for row in rows]) == {
            "sent": 3,
            "failed": 0,
            "skipped": 1,
        }
    finally:
        controller.stop()
    assert delivered_to(recorder) == [f"praxis{n}@example.org" for n in range(4)]
    assert len(recorder.peers) == 2  # the broken connection, then the retry's


def test_a_queued_email_without_bodies_fails_visibly_and_the_rest_go_out(refusing, clean_db):
    from db.models import EmailInhalt

    rows = queue_batch(["praxis0@example.org", "praxis1@example.org"])
    EmailInhalt.delete().where(EmailInhalt.email == rows[0].id).execute()
    sending.transmit_batch([row.id for row in rows])
    broken, good = (Email.get_by_id(row.id) for row in rows)
    assert (broken.status, broken.fehlermeldung) == ("Fehlgeschlagen", "no bodies stored")
    assert good.status == "Gesendet"
    assert delivered_to(refusing) == ["praxis1@example.org"]


def test_the_batch_actor_sends_a_twice_delivered_batch_once(
    server, clean_db, stub_broker, stub_worker
):
    rows = queue_batch([f"praxis{n}@example.org" for n in range(3)])
    ids = [row.id for row in rows]
    actors.send_emails.send(ids)
    actors.send_emails.send(ids)
    stub_broker.join(actors.send_emails.queue_name, timeout=20_000)
    stub_worker.join()
    assert delivered_to(server) == [f"praxis{n}@example.org" for n in range(3)]
    assert {Email.get_by_id(i).status for i in ids} == {"Gesendet"}
