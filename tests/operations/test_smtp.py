"""Queueing and transmitting Email rows through a real SMTP server (aiosmtpd on loopback)."""

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

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
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
    item = queue.outbox_send(first)
    assert queue.outbox_send(first).id == item.id and OutboxItem.select().count() == 1
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
        == f"<anfrage-{anfrage_id}.anfrage@" + (settings.get().REPLY_DOMAIN + ">")
    )
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


class Without8BitMime(Recorder):
    """A server that does not announce 8BITMIME (aiosmtpd's EHLO hook drops it)."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [line for line in responses if "8BITMIME" not in line.upper()]


@pytest.mark.parametrize("announces_8bitmime", [True, False])
def test_text_goes_8bit_only_to_a_server_that_announced_8bitmime(
    smtp_settings, queued, announces_8bitmime
):
    recorder = Recorder() if announces_8bitmime else Without8BitMime()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    try:
        assert sending.transmit(queued.id) == "sent"
    finally:
        controller.stop()
    (envelope,) = recorder.envelopes
    message = recorder.messages()[0]
    parts = [part for part in message.walk() if not part.is_multipart()]
    encodings = {part["Content-Transfer-Encoding"] for part in parts}
    if announces_8bitmime:
        assert "BODY=8BITMIME" in envelope.mail_options and encodings == {"8bit"}
    else:
        assert "BODY=8BITMIME" not in envelope.mail_options and encodings == {"base64"}
        assert envelope.original_content.isascii()
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Sehr geehrter Herr Dr. Müller," in text


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


# --- pipelining (RFC 2920) --------------------------------------------------------------


class Pipelining(Recorder):
    """aiosmtpd reads commands in order anyway; this handler also announces PIPELINING,
    so the session writes MAIL, RCPT and DATA at once. ``mail_reply`` refuses senders."""

    mail_reply = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


def _message(n: int) -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: Grüße {n}\r\n"
        f"Message-ID: <p{n}@psymatch.example>\r\n\r\n.eine Zeile mit Punkt\r\nÄ\r\n"
    ).encode()


def test_pipelined_session_keeps_in_step_through_refusals(smtp_settings):
    recorder = Pipelining()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    target = smtp.parse_smtp_url(settings.get().SMTP_URL, timeout=5)
    try:
        with smtp.Session(target) as session:
            assert session.pipelining and session.eight_bit
            send = lambda n: session.send(  # noqa: E731
                _message(n), envelope_from="a@example.org", to_addr="b@example.org"
            )
            send(1)
            recorder.rcpt_reply = "550 5.1.1 no such mailbox"
            with pytest.raises(smtp.PermanentError, match="recipient refused: b@example.org: 550"):
                send(2)
            recorder.rcpt_reply, recorder.mail_reply = None, "553 5.7.1 sender refused"
            with pytest.raises(smtp.PermanentError, match="553"):
                send(3)
            recorder.mail_reply, recorder.data_reply = None, "451 4.3.0 try again later"
            with pytest.raises(smtp.TemporaryError, match="451"):
                send(4)
            recorder.data_reply = None
            send(5)  # the conversation is still in step after each refusal
    finally:
        controller.stop()
    assert [m["Message-ID"] for m in recorder.messages()] == [
        "<p1@psymatch.example>",
        "<p5@psymatch.example>",
    ]
    body = recorder.messages()[1].get_content()
    assert body.startswith(".eine Zeile mit Punkt")  # dot-stuffed on the way, unstuffed here
    assert all("BODY=8BITMIME" in e.mail_options for e in recorder.envelopes)


@pytest.mark.parametrize(
    "message",
    [b".a\r\n", b"a\r\n.b\r\n..c\r\nd.\r\n", b"a\r\n.\r\n", b"no dots\r\n", b".", b""],
)
def test_dot_stuffing_matches_smtplib(message):
    import re

    assert smtp.dot_stuffed(message) == re.sub(rb"(?m)^\.", b"..", message)


class Refusing(Recorder):
    """Refuses by content instead of by state, so one ``send_all`` meets every case:
    senders ``refused-sender@``, recipients ``nobody@`` (550) and ``busy@`` (450),
    data with ``X-Refuse: permanent`` (554) or ``X-Refuse: temporary`` (451)."""

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
        if b"X-Refuse: permanent" in envelope.original_content:
            return "554 5.6.0 content refused"
        if b"X-Refuse: temporary" in envelope.original_content:
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


class RefusingPipelining(Refusing, Pipelining):
    pass


def _outgoing(n: int, *, sender="a@example.org", to="b@example.org", refuse=None, build=None):
    message = _message(n)
    if refuse:
        message = f"X-Refuse: {refuse}\r\n".encode() + message

    def fails():
        raise smtp.PermanentError(f"message {n} cannot be built")

    return smtp.Outgoing(fails if build == "fails" else (lambda: message), sender, to)


def _ids(recorder) -> list[str]:
    return [m["Message-ID"] for m in recorder.messages()]


@pytest.mark.parametrize("handler", [Refusing, RefusingPipelining])
def test_send_all_reports_each_message_in_order_and_stays_in_step(smtp_settings, handler):
    recorder = handler()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    target = smtp.parse_smtp_url(settings.get().SMTP_URL, timeout=5)
    outgoing = [
        _outgoing(0),
        _outgoing(1, to="nobody@example.org"),
        _outgoing(2, build="fails"),
        _outgoing(3, sender="refused-sender@example.org"),
        _outgoing(4, refuse="permanent"),
        _outgoing(5),
        _outgoing(6, build="fails"),
    ]
    try:
        with smtp.Session(target) as session:
            assert session.pipelining == (handler is RefusingPipelining)
            results = [
                (i, str(error) if error else None) for i, error in session.send_all(outgoing)
            ]
            session.send(_message(7), envelope_from="a@example.org", to_addr="b@example.org")
    finally:
        controller.stop()
    assert [i for i, _ in results] == list(range(7))
    assert results[0] == (0, None) and results[5] == (5, None)
    assert "recipient refused: nobody@example.org: 550" in results[1][1]
    assert results[2][1] == "message 2 cannot be built"
    assert results[6][1] == "message 6 cannot be built"
    assert "553" in results[3][1] and "554" in results[4][1]
    # accepted: exactly the two good ones, then the one sent after the batch
    assert _ids(recorder) == [f"<p{n}@psymatch.example>" for n in (0, 5, 7)]


@pytest.mark.parametrize("handler", [Refusing, RefusingPipelining])
@pytest.mark.parametrize("refusal", ["data", "recipient"])
def test_send_all_raises_a_temporary_refusal_and_delivers_nothing_after_it(
    smtp_settings, handler, refusal
):
    """The next envelope may already be open (354) when the refusal arrives: the session
    then closes the connection, and the server drops that transaction unsent."""
    recorder = handler()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    target = smtp.parse_smtp_url(settings.get().SMTP_URL, timeout=5)
    second = (
        _outgoing(1, refuse="temporary")
        if refusal == "data"
        else _outgoing(1, to="busy@example.org")
    )
    yielded = []
    try:
        with pytest.raises(smtp.TemporaryError, match="451" if refusal == "data" else "450"):
            with smtp.Session(target) as session:
                for index, error in session.send_all([_outgoing(0), second, _outgoing(2)]):
                    yielded.append((index, error))
        with smtp.Session(target) as session:  # the server itself is fine
            session.send(_message(3), envelope_from="a@example.org", to_addr="b@example.org")
    finally:
        controller.stop()
    assert yielded == [(0, None)]
    assert _ids(recorder) == ["<p0@psymatch.example>", "<p3@psymatch.example>"]


def test_send_all_left_early_delivers_no_empty_message(smtp_settings):
    """A caller that stops after the first acceptance (its database mark failed, say)
    leaves the second envelope open on the server; no message may come of it."""
    recorder = RefusingPipelining()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    target = smtp.parse_smtp_url(settings.get().SMTP_URL, timeout=5)
    try:
        with pytest.raises(RuntimeError, match="mark failed"):
            with smtp.Session(target) as session:
                for _index, _error in session.send_all([_outgoing(0), _outgoing(1)]):
                    raise RuntimeError("mark failed")
        with smtp.Session(target) as session:
            session.send(_message(2), envelope_from="a@example.org", to_addr="b@example.org")
    finally:
        controller.stop()
    assert _ids(recorder) == ["<p0@psymatch.example>", "<p2@psymatch.example>"]
    assert all(e.original_content for e in recorder.envelopes)


def test_batch_sends_pipelined_through_the_real_relay_path(smtp_settings, clean_db):
    recorder = RefusingPipelining()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    addresses = ["praxis0@example.org", "nobody@example.org", "praxis2@example.org"]
    try:
        rows = []
        for n, address in enumerate(addresses):
            therapist, anfrage = make_anfrage_and_therapist(n + 1)
            rendered = rendered_inquiry(anfrage.id)
            rows.append(queue.queue_email(rendered, therapist_id=therapist.id, to_email=address)[0])
        counts = sending.transmit_batch([row.id for row in rows])
    finally:
        controller.stop()
    assert counts == {"sent": 2, "failed": 1, "skipped": 0}
    assert [e.rcpt_tos[0] for e in recorder.envelopes] == [addresses[0], addresses[2]]
    statuses = [Email.get_by_id(row.id).status for row in rows]
    assert statuses == ["Gesendet", "Fehlgeschlagen", "Gesendet"]
    assert "550" in Email.get_by_id(rows[1].id).fehlermeldung


def test_a_queued_email_without_bodies_fails_visibly_and_the_rest_go_out(smtp_settings, clean_db):
    from db.models import EmailInhalt

    recorder = RefusingPipelining()
    controller = start(recorder, "smtp://127.0.0.1:{port}")
    try:
        rows = []
        for n in range(2):
            therapist, anfrage = make_anfrage_and_therapist(n + 1)
            rendered = rendered_inquiry(anfrage.id)
            address = f"praxis{n}@example.org"
            rows.append(queue.queue_email(rendered, therapist_id=therapist.id, to_email=address)[0])
        EmailInhalt.delete().where(EmailInhalt.email == rows[0].id).execute()
        sending.transmit_batch([row.id for row in rows])
    finally:
        controller.stop()
    broken, good = (Email.get_by_id(row.id) for row in rows)
    assert (broken.status, broken.fehlermeldung) == ("Fehlgeschlagen", "no bodies stored")
    assert good.status == "Gesendet"
    assert [e.rcpt_tos[0] for e in recorder.envelopes] == ["praxis1@example.org"]
