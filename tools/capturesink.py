"""The simulator's email sink (``psymatch simulate --sink capture``, the default).

It stands in for ``operations.emailing.smtp.Session`` while a run lasts: each message
``transmit_batch`` built exactly as for the provider is serialised as for SMTP and its
Message-ID written down as the counting sink (``tools.countingsink``) reads it, without a
network round trip per email. The serialising (the standard library's generator, about a
millisecond per email) runs in a helper process on another core, as a real SMTP server runs
beside the workers that send to it: the simulation hands each message over, pickled, and
goes on. Each header goes over as its name and text and is made again by the messages'
policy on the other side (``dumps``): pickled whole, a header carries its parse tree
(0.38 ms a message; 0.03 ms as name and text). The pipe does not make the
simulation wait either: what the helper has not read yet waits in a backlog here, written
on whenever the pipe has room (a morning's inquiries arrive faster than the helper
serialises them). ``received_ids()`` waits for the helper and lists, in sending order, the
Message-IDs of the messages it serialised. One it could not serialise is not
received, which the simulation's invariant check reports (an email marked sent that the sink
never got); the helper's error is in ``errors``.

``python -m tools.capturesink FILE`` is the helper: it reads length-prefixed pickles from
its standard input until it closes and writes one line per message to FILE, the Message-ID
or ``!`` and the error. It imports little (the counting sink's reading of a Message-ID,
the email policy the messages carry), so it starts in a moment.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import pickle
import select
import struct
import subprocess
import sys
from email.headerregistry import BaseHeader
from pathlib import Path

from psymatch import mail_policy
from tools import countingsink

URL = "smtp://capture.invalid:25"
_LENGTH = struct.Struct(">I")


class SinkError(RuntimeError):
    """The helper process is gone or failed."""


def _header(name: str, value: str):
    """A header made again from its name and text, as the messages' policy made it."""
    return mail_policy.SMTP.header_factory(name, value)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, BaseHeader):
            return _header, (obj.name, str(obj))
        return NotImplemented


def dumps(message) -> bytes:
    """``message`` pickled for the helper, each header as its name and text."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
    return buffer.getvalue()


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
        self._fd = self._process.stdin.fileno()  # written to directly, never blocking
        os.set_blocking(self._fd, False)
        self._backlog: collections.deque[memoryview] = collections.deque()
        self._received: list[str] | None = None
        self.errors: list[str] = []
        self._smtp, self._original = smtp, smtp.Session
        Session.sink = self
        smtp.Session = Session

    def submit(self, message) -> None:
        if self._process.stdin.closed:  # its descriptor may belong to another file by now
            raise SinkError("the capture sink is stopped")
        data = dumps(message)
        self._backlog.append(memoryview(_LENGTH.pack(len(data)) + data))
        self._write(wait=False)

    def _write(self, *, wait: bool) -> None:
        """Write the backlog into the pipe, as far as it has room (all of it: ``wait``)."""
        backlog, fd = self._backlog, self._fd
        while backlog:
            try:
                written = os.write(fd, backlog[0])
            except BlockingIOError:
                if not wait:
                    return
                select.select([], [fd], [])
                continue
            except (BrokenPipeError, OSError):
                raise SinkError("the capture sink's helper process is gone") from None
            if written == len(backlog[0]):
                backlog.popleft()
            else:
                backlog[0] = backlog[0][written:]

    def received_ids(self) -> list[str]:
        """Every message the helper serialised, in sending order (waits for the helper)."""
        if self._received is None:
            self._finish()
        return list(self._received)

    def _finish(self) -> None:
        if not self._process.stdin.closed:
            with contextlib.suppress(SinkError):  # the helper is gone: its code tells
                self._write(wait=True)
            with contextlib.suppress(BrokenPipeError):
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
