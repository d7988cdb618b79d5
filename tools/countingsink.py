"""The SMTP server of ``psymatch bench emails`` and the soak: aiosmtpd, keeping the Message-IDs.

``python -m tools.countingsink PORT FILE`` runs aiosmtpd on 127.0.0.1:PORT, accepts
every message and appends its Message-ID to FILE, one per line, flushed per message
(a message accepted twice is listed twice: the bench counts duplicates from this);
it prints ``ready`` once it listens and stops on SIGTERM or SIGINT.

It runs as a process of its own, so the server shares neither an interpreter nor
its GIL with the bench's coordinating loop. aiosmtpd is the same server the
development sink (``psymatch.mailsink``) and the test suite use.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from psymatch.ports import free_port

KIND = "aiosmtpd"  # what the bench reports as ``smtp_server``


class SinkError(RuntimeError):
    pass


def message_id(content: bytes) -> str:
    """The Message-ID header of a raw message, "-" when it has none.

    Read by the standard library's header parser: a long (signed) Message-ID arrives
    folded onto a continuation line, which a search of the first line missed, so every
    such message counted as a repeat of "-".
    """
    return header_message_id(BytesHeaderParser(policy=compat32).parsebytes(content)["Message-ID"])


def header_message_id(value) -> str:
    """A Message-ID header's value (folded or not, None when missing) as counted."""
    found = "".join(str(value).split()) if value is not None else ""
    return found.encode("ascii", "replace").decode("ascii") or "-"


class Sink:
    """A started server: ``url``, ``kind``, ``received_ids()`` once stopped, ``stop()``."""

    kind = KIND

    def __init__(self, process: subprocess.Popen, port: int, received: Path):
        self.process, self.port, self.received = process, port, received

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def check(self) -> None:
        """Raise ``SinkError`` when the server is no longer running."""
        if self.process.poll() is not None:
            code = self.process.returncode
            raise SinkError(f"the SMTP server ({self.kind}) exited with code {code}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def received_ids(self) -> list[str]:
        """The Message-ID of every message the server accepted, repeats included."""
        if not self.received.exists():
            return []
        return self.received.read_text(encoding="ascii").split()

    def discard(self) -> None:
        self.stop()


def start(directory: Path) -> Sink:
    """Start the server on a free loopback port, its list of Message-IDs in ``directory``."""
    port = free_port()
    received = directory / "bench-smtp-received.txt"
    received.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.countingsink", str(port), str(received)],
        stdout=subprocess.PIPE,
        text=True,
    )
    if process.stdout.readline().strip() != "ready":
        process.kill()
        process.wait()
        raise SinkError(f"the local SMTP server ({KIND}) did not start")
    return Sink(process, port, received)


class CountingHandler:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        line = message_id(envelope.original_content or envelope.content) + "\n"
        with self.lock:
            self.out.write(line)
            self.out.flush()
        return "250 OK"


def main(argv: list[str]) -> int:
    from aiosmtpd.controller import Controller

    from psymatch.mailsink import serve

    port, path = int(argv[0]), argv[1]
    # a Message-ID with bytes outside ASCII is written with "?" for them
    with open(path, "a", encoding="ascii", errors="replace") as out:
        serve(Controller(CountingHandler(out), hostname="127.0.0.1", port=port), "ready")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
