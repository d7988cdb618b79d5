"""The direct MIME serialiser, read back with the standard library's parser."""

from __future__ import annotations

import datetime as dt
import email
from email import policy

import pytest

from operations.emailing import mime, smtp

DATE = dt.datetime(2026, 11, 30, 9, 15, tzinfo=dt.UTC)


def _build(**changes):
    values = dict(
        from_addr="anfragen@psymatch.example",
        from_name="psymatch Therapievermittlung",
        to_addr="praxis@example.org",
        to_name="Dr. Jördis Müller-Lüdenscheidt",
        subject="Suche Psychotherapieplätze - Ref: A17",
        text="Sehr geehrte Frau Müller,\n\nbitte antworten Sie – gern kurz.\n" * 40,
        html="<p>Sehr geehrte Frau Müller,</p>\n<p>Grüße</p>\n" * 40,
        message_id="<anfrage-17.anfrage@antwort.psymatch.example>",
        date=DATE,
        headers={"Reply-To": "antwort+a17.x@antwort.psymatch.example"},
    )
    values.update(changes)
    return email.message_from_bytes(smtp.build_message(**values), policy=policy.default)


def test_headers_and_both_parts_read_back_unchanged():
    message = _build()
    assert message["Subject"] == "Suche Psychotherapieplätze - Ref: A17"
    assert message["To"].addresses[0].display_name == "Dr. Jördis Müller-Lüdenscheidt"
    assert message["To"].addresses[0].addr_spec == "praxis@example.org"
    assert message["Message-ID"] == "<anfrage-17.anfrage@antwort.psymatch.example>"
    assert message["Reply-To"] == "antwort+a17.x@antwort.psymatch.example"
    assert message["Date"].datetime == DATE
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.get_payload()
    assert text.get_content_type() == "text/plain"
    assert (
        text.get_content() == "Sehr geehrte Frau Müller,\n\nbitte antworten Sie – gern kurz.\n" * 40
    )
    assert html.get_content() == "<p>Sehr geehrte Frau Müller,</p>\n<p>Grüße</p>\n" * 40
    assert not message.defects and not text.defects and not html.defects


def test_every_line_is_crlf_terminated_and_short():
    raw = smtp.build_message(
        from_addr="a@b.de", from_name=None, to_addr="c@d.de", to_name=None, subject="x",
        text="y" * 5000, html=None, message_id="<1@x>", date=DATE,
        headers={"References": " ".join(f"<id-{i}@psymatch.example>" for i in range(80))},
    )  # fmt: skip
    lines = raw.split(b"\r\n")
    assert all(b"\n" not in line and len(line) <= mime.MAX_LINE for line in lines)
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content() == "y" * 5000
    assert parsed["References"].split() == [f"<id-{i}@psymatch.example>" for i in range(80)]


def test_text_only_and_attachments(tmp_path):
    pdf = tmp_path / "Schweigepflichtentbindung ä.pdf"
    pdf.write_bytes(b"%PDF-1.4 fake but bytes\x00\xff")
    message = _build(html=None, attachments=[str(pdf)])
    assert message.get_content_type() == "multipart/mixed"
    body, attachment = message.get_payload()
    assert body.get_content_type() == "text/plain"
    assert attachment.get_filename() == "Schweigepflichtentbindung ä.pdf"
    assert attachment.get_content() == b"%PDF-1.4 fake but bytes\x00\xff"


@pytest.mark.parametrize("field", ["subject", "to_name"])
def test_a_line_break_in_a_header_is_refused(field):
    with pytest.raises(smtp.PermanentError, match="line break"):
        _build(**{field: "Hallo\r\nBcc: evil@example.org"})


def _parts(raw: bytes):
    message = email.message_from_bytes(raw, policy=policy.default)
    return message, [part for part in message.walk() if not part.is_multipart()]


def test_eight_bit_text_parts_read_back_unchanged():
    values = dict(
        from_addr="anfragen@psymatch.example", from_name="psymatch", to_addr="p@example.org",
        to_name="Jördis Müller", subject="Suche Psychotherapieplätze - Ref: A17",
        text="Grüße – bitte antworten Sie.\n" * 40, html="<p>Grüße</p>\n" * 40,
        message_id="<1@x>", date=DATE,
    )  # fmt: skip
    seven = smtp.build_message(**values)
    eight = smtp.build_message(**values, eight_bit=True)
    assert len(eight) < len(seven)  # a third less than base64
    assert all(len(line) <= mime.MAX_LINE for line in eight.split(b"\r\n"))
    assert b"\n" not in eight.replace(b"\r\n", b"")  # every line end is CRLF
    message, (text, html) = _parts(eight)
    assert text["Content-Transfer-Encoding"] == html["Content-Transfer-Encoding"] == "8bit"
    # text parts travel with CRLF line ends (RFC 2046 4.1.1); readers normalise them
    assert text.get_content().replace("\r\n", "\n") == values["text"]
    assert html.get_content().replace("\r\n", "\n") == values["html"]
    assert message["Subject"] == values["subject"] and not message.defects


@pytest.mark.parametrize(
    "text",
    ["x" * 2000, "eine Zeile\rmit nacktem CR\n", "mit NUL \x00\n"],
    ids=["long", "cr", "nul"],
)
def test_text_that_cannot_travel_as_8bit_goes_base64(text):
    raw = smtp.build_message(
        from_addr="a@b.de", from_name=None, to_addr="c@d.de", to_name=None, subject="x",
        text=text, html="<p>kurz</p>\n", message_id="<1@x>", date=DATE, eight_bit=True,
    )  # fmt: skip
    _, (plain, html) = _parts(raw)
    assert plain["Content-Transfer-Encoding"] == "base64"
    assert html["Content-Transfer-Encoding"] == "8bit"
    assert plain.get_content() == text
    assert all(len(line) <= mime.MAX_LINE for line in raw.split(b"\r\n"))


@pytest.mark.parametrize(
    "value",
    [
        "Suche Psychotherapieplätze - Ref: A17",
        "Ä" * 90,  # every character two bytes, six encoded characters each
        "Rückfrage zu Ihrer Anfrage: " + "Wartezeit, Kassensitz, Gruppentherapie? " * 6,
        "Emoji 😀 und Umlaute äöü _=? am Rand",
    ],
    ids=["short", "all-umlauts", "long", "specials"],
)
def test_non_ascii_headers_are_rfc2047_words_that_decode_back(value):
    line = mime.header("Subject", value)
    words = mime.encoded_words(value).split("\r\n ")
    assert all(len(word) <= 75 and word.startswith("=?utf-8?q?") for word in words)
    assert line.isascii() and line.endswith(b"\r\n")
    parsed = email.message_from_bytes(line + b"\r\nbody\r\n", policy=policy.default)
    assert parsed["Subject"] == value
