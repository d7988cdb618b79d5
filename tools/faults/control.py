"""``python -m tools.faults.control``: the clock's outbox work, driven over stdin.

One command per line, one JSON answer per line on stdout:
``ping``; ``relay`` (once); ``auto SECONDS`` (relay in a loop, like the clock, only
faster); ``manual`` (stop the loop); ``reconcile`` (``workers.outbox.reconcile`` with
``stale_after=0``: everything enqueued but not done is put back); ``quit``.
A database or broker error is answered (``{"error": ...}``) and the loop keeps going:
the controller has to live through the faults it watches.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sys
import threading


def _guarded(function):
    import peewee
    import redis

    from db import database

    try:
        return function()
    except (peewee.DatabaseError, peewee.InterfaceError, redis.exceptions.RedisError) as exc:
        if not database.db.is_closed():
            with contextlib.suppress(Exception):  # a dead connection may not close cleanly
                database.db.close()
        return {"error": f"{type(exc).__name__}: {exc}".strip()[:300]}


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from db import database

    database.init()
    import workers.actors  # noqa: F401  (the broker and every actor, for the relay)
    from workers import outbox

    stop_loop = threading.Event()
    loop_thread = None

    def loop(interval: float):
        while not stop_loop.wait(interval):
            result = _guarded(lambda: {"enqueued": outbox.relay()})
            if "error" in result:
                print(f"relay: {result['error']}", file=sys.stderr, flush=True)

    for line in sys.stdin:
        command, *rest = line.split() or [""]
        if command == "ping":
            answer = {"ok": True}
        elif command == "relay":
            answer = _guarded(lambda: {"enqueued": outbox.relay()})
        elif command == "reconcile":
            answer = _guarded(lambda: outbox.reconcile(stale_after=dt.timedelta(0)))
        elif command == "auto":
            stop_loop.set()
            if loop_thread:
                loop_thread.join()
            stop_loop = threading.Event()
            loop_thread = threading.Thread(target=loop, args=(float(rest[0]),), daemon=True)
            loop_thread.start()
            answer = {"auto": float(rest[0])}
        elif command == "manual":
            stop_loop.set()
            if loop_thread:
                loop_thread.join()
            answer = {"auto": None}
        elif command == "quit":
            stop_loop.set()
            print(json.dumps({"bye": True}), flush=True)
            return 0
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
