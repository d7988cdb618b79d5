"""A local SMTP sink for the demo: every message lands in a Maildir under ``var/mail``.

``python -m psymatch.mailsink`` listens on the host and port of ``SMTP_URL`` and
stores each message it receives, so a person can read what psymatch sent.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from psymatch import settings

if TYPE_CHECKING:  # aiosmtpd is in the demo extra; the web app imports maildir_path only
    from aiosmtpd.controller import Controller


def maildir_path() -> Path:
    return Path(settings.get().VAR_DIR) / "mail"


def ensure_maildir(maildir: Path) -> Path:
    """Create the Maildir with its ``tmp``/``new``/``cur`` folders.

    ``mailbox.Maildir`` only creates them when the folder itself is missing, so
    an existing empty folder would make every delivery fail.
    """
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    return maildir


def make_controller(host: str, port: int, maildir: Path) -> Controller:
    """The sink's SMTP server (not started) storing into ``maildir``."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox

    return Controller(Mailbox(str(ensure_maildir(maildir))), hostname=host, port=port)


def main() -> int:
    target = urlparse(settings.get().SMTP_URL)
    host, port = target.hostname or "127.0.0.1", target.port or 8025
    maildir = maildir_path()
    serve(
        make_controller(host, port, maildir),
        f"mail sink on smtp://{host}:{port}, messages in {maildir}",
    )
    return 0


def serve(controller: Controller, ready_line: str) -> None:
    """Run an SMTP server until SIGTERM or SIGINT; print ``ready_line`` once it listens."""
    controller.start()
    print(ready_line, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
