"""/dev/mail: reading the demo sink's Maildir through the Flask app."""

from __future__ import annotations

import mailbox
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from db.models import Therapeutenanfrage, Therapist
from operations.emailing import queue, render, sending
from operations.emailing.data import PatientInfo, TherapistInfo
from psymatch import mailsink, settings
from psymatch.ports import free_port
from webhooks import devmail, mailview
from webhooks.app import create_app


@pytest.fixture
def var_dir(tmp_path, monkeypatch):
    # restore the settings object as it was, whatever the test overrides
    monkeypatch.setattr(settings, "_current", settings.get())
    settings.override(VAR_DIR=str(tmp_path), SMTP_URL="smtp://127.0.0.1:8025")
    return tmp_path


def app_with_devmail():
    app = create_app({"TESTING": True})
    assert devmail.register(app) is True
    return app


def add_message(maildir: Path, subject: str, date: str, text: str, html: str | None = None):
    box = mailbox.Maildir(str(maildir), create=True)
    message = EmailMessage()
    message["From"] = "psymatch <anfragen@psymatch.example>"
    message["To"] = "Praxis <praxis@example.org>"
    message["Subject"] = subject
    message["Date"] = date
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return box.add(message.as_bytes())


def test_list_is_newest_first_and_a_click_shows_the_text(var_dir):
    maildir = mailsink.maildir_path()
    old = add_message(maildir, "Erste", "Mon, 18 Aug 2025 09:00:00 +0200", "alt")
    new = add_message(maildir, "Zweite Anfrage – Plätze", "Tue, 19 Aug 2025 09:00:00 +0200", "neu")
    client = app_with_devmail().test_client()
    page = client.get("/dev/mail/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert body.index("Zweite Anfrage – Plätze") < body.index("Erste")
    assert "praxis@example.org" in body and "2 Nachricht(en)" in body
    assert f'href="/dev/mail/{new}"' in body and f'href="/dev/mail/{old}"' in body
    shown = client.get(f"/dev/mail/{new}")
    assert shown.status_code == 200
    assert "<pre>neu\n</pre>" in shown.get_data(as_text=True)


def test_content_is_escaped_and_html_is_sandboxed(var_dir):
    key = add_message(
        mailsink.maildir_path(),
        "<script>alert(1)</script>",
        "Tue, 19 Aug 2025 09:00:00 +0200",
        "<b>kein HTML</b>",
        html="<p>Hallo</p>",
    )
    client = app_with_devmail().test_client()
    listing = client.get("/dev/mail/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in listing
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    shown = client.get(f"/dev/mail/{key}").get_data(as_text=True)
    assert "&lt;b&gt;kein HTML&lt;/b&gt;" in shown
    html = client.get(f"/dev/mail/{key}/html")
    assert html.status_code == 200 and "<p>Hallo</p>" in html.get_data(as_text=True)
    assert html.headers["Content-Security-Policy"].startswith("sandbox")


def test_unknown_keys_and_an_empty_maildir(var_dir):
    client = app_with_devmail().test_client()
    assert "Noch keine E-Mails" in client.get("/dev/mail/").get_data(as_text=True)
    add_message(mailsink.maildir_path(), "x", "Tue, 19 Aug 2025 09:00:00 +0200", "x")
    for key in ("nope", "..%2F..%2Fetc%2Fpasswd", "..", "a b"):
        assert client.get(f"/dev/mail/{key}").status_code == 404
        assert client.get(f"/dev/mail/{key}/html").status_code == 404


@pytest.mark.parametrize(
    "url,local",
    [
        ("smtp://127.0.0.1:8025", True),
        ("smtp://localhost:1025", True),
        ("smtp://[::1]:25", True),
        ("smtps://user:pw@mail.example.org:465", False),
        ("smtp+starttls://10.0.0.5:587", False),
    ],
)
def test_only_served_in_demo_mode(var_dir, url, local):
    settings.override(SMTP_URL=url)
    assert mailview.is_local_smtp(url) is local
    app = create_app({"TESTING": True})
    assert devmail.register(app) is local
    assert app.test_client().get("/dev/mail/").status_code == (200 if local else 404)


def test_an_email_sent_through_the_sink_can_be_read(var_dir, clean_db):
    port = free_port()
    maildir = mailsink.maildir_path()
    maildir.mkdir(parents=True)  # an empty folder, as a first run leaves it
    sink = mailsink.make_controller("127.0.0.1", port, maildir)
    sink.start()
    try:
        settings.override(SMTP_URL=f"smtp://127.0.0.1:{port}")
        therapist = Therapist.create(
            external_id="T1",
            anrede="Frau",
            geschlecht="weiblich",
            vorname="Ute",
            nachname="Über",
            email="ute@example.org",
        )
        anfrage = Therapeutenanfrage.create(therapist=therapist, anfragegroesse=1)
        rendered = render.render_inquiry(
            anfrage.id,
            TherapistInfo(therapist.id, "Frau", None, "Ute", "Über", email="ute@example.org"),
            [PatientInfo(5, None, "divers", ("Zwänge",), "BKK", None, None, None, {})],
        )
        row, _ = queue.queue_email(rendered, therapist_id=therapist.id)
        assert sending.transmit(row.id) == "sent"
    finally:
        sink.stop()
    client = app_with_devmail().test_client()
    listing = client.get("/dev/mail/").get_data(as_text=True)
    assert f"Suche Psychotherapieplätze - Ref: A{anfrage.id}" in listing
    (key,) = re.findall(r'href="/dev/mail/([^"/]+)"', listing)
    shown = client.get(f"/dev/mail/{key}").get_data(as_text=True)
    assert "Sehr geehrte Frau Über," in shown and "Symptome: Zwänge" in shown
    assert "Reply-To" in shown and "antwort+a" in shown
