"""The simulator's capture sink: messages serialised in its helper process, counted in
sending order; one that cannot be serialised is not received and its error is kept."""

from __future__ import annotations

import datetime as dt

import pytest

from operations.emailing import smtp
from tools import capturesink


def _message(number: int):
    return smtp.build_message(
        from_addr="anfragen@psymatch.example",
        from_name="psymatch",
        to_addr=f"praxis{number}@example.org",
        to_name="Praxis Müller",
        subject="Anfrage für 3 Patientinnen und Patienten",
        text="Guten Tag,\n\nwir suchen einen Platz. " * 20,
        html="<p>Guten Tag,</p>" * 20,
        message_id=f"<anfrage-{number}@antwort.psymatch.example>",
        date=dt.datetime(2026, 1, 5, 8, 0),
    )


def test_messages_sent_through_the_session_are_received_in_order(tmp_path):
    original = smtp.Session
    sink = capturesink.CaptureSink(tmp_path)
    try:
        assert smtp.Session is capturesink.Session
        with smtp.Session(smtp.parse_smtp_url(sink.url)) as session:
            for number in (3, 1, 2):
                session.send(_message(number), envelope_from="a@b.example", to_addr="c@d")
        assert sink.received_ids() == [
            "<anfrage-3@antwort.psymatch.example>",
            "<anfrage-1@antwort.psymatch.example>",
            "<anfrage-2@antwort.psymatch.example>",
        ]
        assert sink.errors == []
    finally:
        sink.stop()
    assert smtp.Session is original
    with pytest.raises(capturesink.SinkError):
        capturesink.Session(None).send(_message(4), envelope_from="a@b", to_addr="c@d")


def test_a_message_that_cannot_be_serialised_is_not_received(tmp_path):
    sink = capturesink.CaptureSink(tmp_path)
    try:
        broken = _message(2)
        broken._headers.append(("X-Broken", 12345))  # not a header value: as_bytes fails
        for message in (_message(1), broken, _message(3)):
            sink.submit(message)
        assert sink.received_ids() == [
            "<anfrage-1@antwort.psymatch.example>",
            "<anfrage-3@antwort.psymatch.example>",
        ]
        assert len(sink.errors) == 1 and "AttributeError" in sink.errors[0]
    finally:
        sink.stop()
