"""The simulator's capture sink: messages serialised in its helper process, counted in
sending order; one that cannot be serialised is not received and its error is kept."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import signal
import threading

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
    with pytest.raises(capturesink.SinkError, match="stopped"):
        sink.submit(_message(4))
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


def test_a_message_pickled_for_the_helper_serialises_as_the_one_built():
    message = _message(5)
    message["Reply-To"] = "Antwort Praxis Müller <antwort+5@antwort.psymatch.example>"
    sent = message.as_bytes()  # sets the multipart boundary, which the copy then carries
    copy = pickle.loads(capturesink.dumps(message))
    assert copy.as_bytes() == sent
    assert copy["To"].addresses[0].display_name == "Praxis Müller"


def test_a_helper_that_falls_behind_does_not_hold_the_sender_up(tmp_path):
    sink = capturesink.CaptureSink(tmp_path)
    try:
        os.kill(sink._process.pid, signal.SIGSTOP)  # reads nothing until continued
        try:
            sender = threading.Thread(  # far more than a pipe holds (64 KiB)
                target=lambda: [sink.submit(_message(number)) for number in range(200)]
            )
            sender.start()
            sender.join(timeout=60)
            assert not sender.is_alive(), "the sender waits for the stopped helper"
            assert len(sink._backlog) > 0  # waiting here, not in the pipe
        finally:
            os.kill(sink._process.pid, signal.SIGCONT)
        received = sink.received_ids()
        assert received == [f"<anfrage-{n}@antwort.psymatch.example>" for n in range(200)]
        assert sink.errors == []
    finally:
        sink.stop()
