"""``tools.fastsink``, the bench's own SMTP sink, as a client meets it over TCP."""

from __future__ import annotations

import smtplib
import socket

import pytest

from operations.emailing import smtp
from tools import countingsink


@pytest.fixture
def sink(tmp_path):
    started = countingsink.start("asyncio", tmp_path)
    yield started
    started.discard()


def _message(n: int, body: str = "Hallo\r\n") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: Grüße {n}\r\n"
        f"Message-ID: <f{n}@psymatch.example>\r\n\r\n{body}"
    ).encode()


class Raw:
    """A bare client: writes bytes as given, reads reply lines."""

    def __init__(self, port: int):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.socket.makefile("rb")
        assert self.reply().startswith(b"220")

    def reply(self) -> bytes:
        lines = [self.file.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(self.file.readline())
        return b"".join(lines)

    def write(self, data: bytes) -> None:
        self.socket.sendall(data)


def test_it_announces_pipelining_and_8bitmime_and_counts_what_smtplib_sends(sink):
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("pipelining") and client.has_extn("8bitmime")
        client.sendmail("a@example.org", ["b@example.org"], _message(1), ["BODY=8BITMIME"])
        client.sendmail("a@example.org", ["b@example.org"], _message(2, ".Punkt\r\n"))
    sink.stop()
    assert sink.received_ids() == ["<f1@psymatch.example>", "<f2@psymatch.example>"]


def test_commands_out_of_sequence_are_refused_and_change_nothing(sink):
    raw = Raw(sink.port)
    raw.write(b"EHLO client\r\n")
    assert raw.reply().startswith(b"250-")
    raw.write(b"RCPT TO:<b@example.org>\r\n")
    assert raw.reply().startswith(b"503")
    raw.write(b"MAIL FROM:<a@example.org>\r\n")
    assert raw.reply().startswith(b"250")
    raw.write(b"DATA\r\n")
    assert raw.reply().startswith(b"503")  # no recipient yet
    raw.write(b"MAIL FROM:<a@example.org>\r\n")
    assert raw.reply().startswith(b"503")  # nested
    raw.write(b"RSET\r\nVRFY x\r\nMAIL TO:<a@example.org>\r\n")
    assert [raw.reply()[:3] for _ in range(3)] == [b"250", b"502", b"501"]
    raw.write(b"X" * 3000)  # no line end within the limit
    assert raw.reply().startswith(b"500")
    raw.write(b"\r\nQUIT\r\n")
    assert raw.reply()[:3] == b"502" and raw.reply().startswith(b"221")
    sink.stop()
    assert sink.received_ids() == []


def test_a_pipelined_stream_cut_anywhere_is_answered_in_order(sink):
    """Two messages, each envelope behind the previous data, written in pieces of 7
    bytes: every reply comes, in order, and both messages count once."""
    envelope = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
    stream = (
        b"EHLO c\r\n"
        + envelope
        + smtp.dot_stuffed(_message(1, ".a\r\n..b\r\n"))
        + b".\r\n"
        + envelope
        + b".\r\n"  # an empty message
        + envelope
        + smtp.dot_stuffed(_message(2))
        + b".\r\nQUIT\r\n"
    )
    raw = Raw(sink.port)
    for start in range(0, len(stream), 7):
        raw.write(stream[start : start + 7])
    codes = [raw.reply()[:3] for _ in range(14)]
    assert codes == [b"250", *[b"250", b"250", b"354", b"250"] * 3, b"221"]
    sink.stop()
    assert sink.received_ids() == ["<f1@psymatch.example>", "-", "<f2@psymatch.example>"]


def test_session_send_all_against_it(sink):
    target = smtp.parse_smtp_url(sink.url, timeout=10)
    outgoing = [
        smtp.Outgoing(lambda n=n: _message(n), "a@example.org", "b@example.org") for n in range(5)
    ]
    with smtp.Session(target) as session:
        assert session.pipelining and session.eight_bit
        assert list(session.send_all(outgoing)) == [(n, None) for n in range(5)]
    sink.stop()
    assert sink.received_ids() == [f"<f{n}@psymatch.example>" for n in range(5)]
