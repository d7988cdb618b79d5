"""The SMTP servers of ``psymatch bench emails``: real servers that keep the Message-IDs.

All run as processes of their own, so the server shares neither an interpreter
(nor its GIL) with the bench's coordinating loop:

- ``postfix``: Postfix's ``smtp-sink`` (Debian package ``postfix``), a server in C
  whose stated purpose is measuring SMTP clients; it appends every accepted message
  to one dump file (in ``/dev/shm`` when that has room), from which the Message-IDs
  are read after the run. The bench's
  server stands in for the mail provider, whose CPU is not psymatch's: per 7.9 KB
  inquiry aiosmtpd took 0.42 ms of CPU, smtp-sink 0.14 ms, on a machine of two cores
  that psymatch's own processes share with it.
- ``asyncio``: ``tools.fastsink``, a minimal SMTP sink of psymatch's own on uvloop,
  the default where smtp-sink is not installed (a laptop without Postfix). It
  appends one Message-ID per line to a file, flushed per message.
- ``aiosmtpd``: ``python -m tools.countingsink PORT FILE`` runs aiosmtpd (on
  uvloop's event loop) and keeps the Message-IDs the same way. The servers of the
  test suite are aiosmtpd too; per message it needs about three times the CPU of
  the two others.

The Python servers print ``ready`` once they listen.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from psymatch.ports import free_port

KINDS = ("postfix", "asyncio", "aiosmtpd")
# the servers that run as ``python -m MODULE PORT FILE``, writing one Message-ID per line
_PYTHON_SERVERS = {"asyncio": "tools.fastsink", "aiosmtpd": "tools.countingsink"}
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
# smtp-sink writes this before each message in its dump file (its -S option)
_SEPARATOR = b"\n=== psymatch bench: next message ===\n"


class SinkError(RuntimeError):
    pass


def message_id(content: bytes) -> str:
    """The Message-ID header of a raw message (searched in the header block only)."""
    head = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = _MESSAGE_ID.search(head)
    return match.group(1).decode("ascii", "replace") if match else "-"


def smtp_sink_path() -> str | None:
    return shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if os.access("/usr/sbin/smtp-sink", os.X_OK) else None
    )


def default_kind() -> str:
    """``postfix`` where smtp-sink is installed (``.ci/run`` installs it), else ``asyncio``."""
    return "postfix" if smtp_sink_path() else "asyncio"


def _wait_listening(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SinkError(f"the SMTP server exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SinkError("the local SMTP server did not start listening")


class Sink:
    """A started server: ``url``, ``kind``, ``received_ids()`` once stopped, ``stop()``."""

    def __init__(self, kind: str, process: subprocess.Popen, port: int, received: Path):
        self.kind, self.process, self.port, self.received = kind, process, port, received

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
        if self.kind in _PYTHON_SERVERS:
            return self.received.read_text(encoding="ascii").split()
        ids, pending = [], b""
        with open(self.received, "rb") as dump:  # 10 KB per message: read it in pieces
            while piece := dump.read(1 << 20):
                *messages, pending = (pending + piece).split(_SEPARATOR)
                ids += [message_id(message) for message in messages if message.strip()]
        if pending.strip():
            ids.append(message_id(pending))
        return ids

    def discard(self) -> None:
        """Stop the server and remove smtp-sink's temporary dump directory."""
        self.stop()
        if self.kind == "postfix":
            shutil.rmtree(self.received.parent, ignore_errors=True)


# What a run of 100,000 inquiries would dump, with room to spare.
_DUMP_ROOM = 2 << 30


def _memory_dir() -> str | None:
    """``/dev/shm`` (Linux's shared-memory file system) when it has room for the dump,
    else None (the system's temporary directory).

    smtp-sink writes each message into a file it creates and deletes at once before
    appending it to the dump. On ext4 creating and deleting those inodes took about
    a tenth of both cores in the email phase, a cost of the bench's stand-in server
    (the real provider is another machine); in memory it is a fraction of that."""
    try:
        stats = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if stats.f_bavail * stats.f_frsize >= _DUMP_ROOM else None


def start(kind: str, directory: Path) -> Sink:
    """Start a ``kind`` server on a free loopback port. The Python servers keep their
    list of Message-IDs in ``directory``; smtp-sink its dump in a temporary directory of its
    own (as root it runs as ``nobody``, who may not reach ``directory``)."""
    if kind not in KINDS:
        raise SinkError(f"unknown SMTP server {kind!r} (one of {', '.join(KINDS)})")
    port = free_port()
    if kind in _PYTHON_SERVERS:
        received = directory / "bench-smtp-received.txt"
        received.unlink(missing_ok=True)
        process = subprocess.Popen(
            [sys.executable, "-m", _PYTHON_SERVERS[kind], str(port), str(received)],
            stdout=subprocess.PIPE,
            text=True,
        )
        if process.stdout.readline().strip() != "ready":
            process.kill()
            raise SinkError(f"the local SMTP server ({kind}) did not start")
        return Sink(kind, process, port, received)
    binary = smtp_sink_path()
    if binary is None:
        raise SinkError(
            "Postfix's smtp-sink is not installed (apt-get install postfix), "
            "or run with --smtp-server asyncio"
        )
    dump_dir = Path(tempfile.mkdtemp(prefix="psymatch-bench-smtp-", dir=_memory_dir()))
    command = [binary, "-S", _SEPARATOR.decode("ascii").replace("\n", "\\n")]
    if os.geteuid() == 0:  # smtp-sink refuses to keep root rights: it runs as nobody
        nobody = pwd.getpwnam("nobody")
        os.chown(dump_dir, nobody.pw_uid, nobody.pw_gid)
        command += ["-u", "nobody"]
    received = dump_dir / "received"
    command += ["-D", str(received), f"127.0.0.1:{port}", "256"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _wait_listening(port, process)
    return Sink(kind, process, port, received)


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
    import uvloop
    from aiosmtpd.controller import Controller

    from psymatch.mailsink import serve

    port, path = int(argv[0]), argv[1]
    with open(path, "a", encoding="ascii", errors="replace") as out:
        controller = Controller(
            CountingHandler(out), hostname="127.0.0.1", port=port, loop=uvloop.new_event_loop()
        )
        serve(controller, "ready")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
