"""The simulator's email sink (``psymatch simulate --sink capture``, the default).

It stands in for ``operations.emailing.smtp.Session`` while a run lasts: each message
``transmit_batch`` built exactly as for the provider is serialised as for SMTP and its
Message-ID written down as the counting sink (``tools.countingsink``) reads it, without a
network round trip per email. The serialising (the standard library's generator, about a
millisecond per email) runs in a helper process on another core, as a real SMTP server runs
beside the workers that send to it: the simulation hands each message over, pickled (a third
of the cost), and goes on. ``received_ids()`` waits for the helper and lists, in sending
order, the Message-IDs of the messages it serialised. One it could not serialise is not
received, which the simulation's invariant check reports (an email marked sent that the sink
never got); the helper's error is in ``errors``.

``python -m tools.capturesink FILE`` is the helper: it reads length-prefixed pickles from
its standard input until it closes and writes one line per message to FILE, the Message-ID
or ``!`` and the error. It imports little (the counting sink's reading of a Message-ID,
the email policy the messages carry), so it starts in a moment.
"""

from __future__ import annotations

import contextlib
import pickle
import struct
import subprocess
import sys
from pathlib import Path

from tools import countingsink

URL = "smtp://capture.invalid:25"
_LENGTH = struct.Struct(">I")


class SinkError(RuntimeError):
    """The helper process is gone or failed."""


def received_id(message) -> str:
    """Serialise ``message`` as for SMTP (one that cannot be fails here) and return its
    Message-ID as the counting sink counts it."""
    message.as_bytes()
    return countingsink.header_message_id(message["Message-ID"])


class Session:
    """What ``_send_claimed`` opens (``smtp.Session(target)``) while a sink is started."""

    sink: CaptureSink | None = None

    def __init__(self, target):
        self.target = target

    def __enter__(self):
        return self

    def send(self, message, *, envelope_from: str, to_addr: str) -> None:
        if Session.sink is None:
            raise SinkError("the capture sink is not started")
        Session.sink.submit(message)

    def __exit__(self, *exc_info) -> None:
        return None


class CaptureSink:
    """``url`` for SMTP_URL, ``received_ids()``, ``stop()`` (as ``countingsink.Sink``)."""

    url = URL

    def __init__(self, directory: Path):
        from operations.emailing import smtp

        self._path = directory / "capture-received.txt"
        self._path.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tools.capturesink", str(self._path)],
            stdin=subprocess.PIPE,
        )
        self._received: list[str] | None = None
        self.errors: list[str] = []
        self._smtp, self._original = smtp, smtp.Session
        Session.sink = self
        smtp.Session = Session

    def submit(self, message) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._process.stdin.write(_LENGTH.pack(len(data)) + data)
        except (BrokenPipeError, ValueError):
            raise SinkError("the capture sink's helper process is gone") from None

    def received_ids(self) -> list[str]:
        """Every message the helper serialised, in sending order (waits for the helper)."""
        if self._received is None:
            self._finish()
        return list(self._received)

    def _finish(self) -> None:
        if not self._process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # the helper is gone: nothing to flush
                self._process.stdin.close()
        code = self._process.wait()
        lines = self._path.read_text(encoding="ascii").splitlines() if self._path.exists() else []
        self._received = [line for line in lines if not line.startswith("!")]
        self.errors = [line[1:] for line in lines if line.startswith("!")]
        if code != 0:
            self.errors.append(f"the helper process exited with code {code}")

    def stop(self) -> None:
        if self._smtp.Session is Session:
            self._smtp.Session = self._original
        Session.sink = None
        if self._received is None:
            self._finish()


def main(argv: list[str]) -> int:
    """The helper: length-prefixed pickled messages on stdin, one line each to the file."""
    source = sys.stdin.buffer
    with open(argv[0], "w", encoding="ascii", errors="replace") as out:
        while header := source.read(_LENGTH.size):
            (length,) = _LENGTH.unpack(header)
            data = source.read(length)
            try:
                line = received_id(pickle.loads(data))
            except Exception as exc:  # not serialisable: not received
                line = "!" + " ".join(f"{type(exc).__name__}: {exc}".split())
            out.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
