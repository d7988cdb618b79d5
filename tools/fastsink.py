"""A minimal SMTP sink on asyncio (uvloop): the bench's stand-in provider without Postfix.

``python -m tools.fastsink PORT FILE`` listens on 127.0.0.1:PORT, accepts every
message and appends its Message-ID to FILE, one per line, flushed per message; it
prints ``ready`` once it listens and stops on SIGTERM or SIGINT.

It speaks the part of SMTP a client of a provider meets: EHLO/HELO (announcing
PIPELINING and 8BITMIME), MAIL, RCPT, DATA, RSET, NOOP and QUIT, in order, with the
usual refusals of a command out of sequence (503), an unknown one (502) and an
over-long line (500). It works on the byte buffer instead of a coroutine per line, as
aiosmtpd does: aiosmtpd needed about three times Postfix's smtp-sink's CPU per
message, on the two cores the bench shares with psymatch's own processes, so with it
the bench measured the server as much as psymatch.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from tools.countingsink import message_id

MAX_LINE = 2048  # a command line (RFC 5321 4.5.3.1.4 allows 512; extensions add more)
EHLO_REPLY = b"250-psymatch-bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n"
_END_OF_DATA = b"\r\n.\r\n"


class SinkProtocol(asyncio.Protocol):
    """One SMTP connection. Replies to the commands of one read go out in one write,
    which is what a pipelining client expects (RFC 2920)."""

    def __init__(self, out):
        self.out = out
        self.buffer = bytearray()
        self.in_data = False
        self.scanned = 0  # how far the buffer was searched for the end of the data
        self.sender = self.recipients = 0
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(b"220 psymatch-bench ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = []
        while self.buffer:
            if self.in_data:
                if not self._take_message(replies):
                    break
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                if len(self.buffer) > MAX_LINE:
                    replies.append(b"500 5.5.2 line too long\r\n")
                    self.buffer.clear()
                break
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            reply = self._command(line)
            replies.append(reply)
            if reply.startswith(b"221"):
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
        if replies:
            self.transport.write(b"".join(replies))

    def _take_message(self, replies: list) -> bool:
        """Take one complete message off the buffer; False while it is incomplete."""
        if self.buffer.startswith(b".\r\n"):  # an empty message
            content, rest = b"", 3
        else:
            end = self.buffer.find(_END_OF_DATA, max(0, self.scanned - 4))
            if end < 0:
                self.scanned = len(self.buffer)
                return False
            content, rest = bytes(self.buffer[: end + 2]), end + len(_END_OF_DATA)
        del self.buffer[:rest]
        self.in_data, self.scanned = False, 0
        self.sender = self.recipients = 0
        self.out.write(message_id(content) + "\n")
        self.out.flush()
        replies.append(b"250 2.0.0 Ok: queued\r\n")
        return True

    def _command(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.sender = self.recipients = 0
            return EHLO_REPLY
        if verb == b"HELO":
            self.sender = self.recipients = 0
            return b"250 psymatch-bench\r\n"
        if verb == b"MAIL":
            if self.sender:
                return b"503 5.5.1 nested MAIL command\r\n"
            if not line[4:].upper().startswith(b" FROM:"):
                return b"501 5.5.4 syntax: MAIL FROM:<address>\r\n"
            self.sender = 1
            return b"250 2.1.0 Ok\r\n"
        if verb == b"RCPT":
            if not self.sender:
                return b"503 5.5.1 need MAIL command\r\n"
            if not line[4:].upper().startswith(b" TO:"):
                return b"501 5.5.4 syntax: RCPT TO:<address>\r\n"
            self.recipients += 1
            return b"250 2.1.5 Ok\r\n"
        if verb == b"DATA":
            if not self.recipients:
                return b"503 5.5.1 need RCPT command\r\n"
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"RSET":
            self.sender = self.recipients = 0
            return b"250 2.0.0 Ok\r\n"
        if verb == b"NOOP":
            return b"250 2.0.0 Ok\r\n"
        if verb == b"QUIT":
            return b"221 2.0.0 Bye\r\n"
        return b"502 5.5.2 command not recognized\r\n"


async def _serve(port: int, path: str) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    # a Message-ID with bytes outside ASCII is written with "?" for them
    with open(path, "a", encoding="ascii", errors="replace") as out:
        server = await loop.create_server(lambda: SinkProtocol(out), "127.0.0.1", port)
        print("ready", flush=True)
        await stopped.wait()
        server.close()


def main(argv: list[str]) -> int:
    import uvloop

    uvloop.run(_serve(int(argv[0]), argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
