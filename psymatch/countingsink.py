"""A real SMTP server (aiosmtpd) that only notes the Message-ID of each accepted message.

``psymatch bench emails`` runs it as its own process, so the server does not share
an interpreter (and its GIL) with the bench's coordinating loop: the figures then
measure psymatch's sending, not the bench process. ``python -m
psymatch.countingsink PORT FILE`` appends one Message-ID per line to FILE, flushed
per message, and prints ``ready`` once it listens.
"""

from __future__ import annotations

import re
import sys
import threading

from aiosmtpd.controller import Controller

from psymatch.mailsink import serve

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def message_id(content: bytes) -> str:
    """The Message-ID header of a raw message (searched in the header block only)."""
    head = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = _MESSAGE_ID.search(head)
    return match.group(1).decode("ascii", "replace") if match else "-"


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
    port, path = int(argv[0]), argv[1]
    with open(path, "a", encoding="ascii") as out:
        serve(Controller(CountingHandler(out), hostname="127.0.0.1", port=port), "ready")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
