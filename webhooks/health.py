"""Checks for ``/status``, ``/readyz`` and the CLI: are the database and broker there?"""

from __future__ import annotations

import time

from db import database, migrate


def check_database() -> dict:
    started = time.perf_counter()
    try:
        with database.connection():
            database.db.execute_sql("SELECT 1").fetchone()
            version, head = migrate.current_version(), migrate.head_version()
    except Exception as exc:  # any failure is the answer, not an error of the check
        return {"ok": False, "backend": database.dialect(), "error": _one_line(exc)}
    return {
        "ok": version == head,
        "backend": database.dialect(),
        "schema_version": version,
        "schema_head": head,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def check_broker() -> dict:
    import redis

    from workers import broker

    started = time.perf_counter()
    try:
        url = broker.redis_url()
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return {"ok": False, "error": _one_line(exc)}
    return {
        "ok": True,
        "kind": "embedded" if url.startswith("unix://") else "redis",
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


READY_REDIS_TIMEOUT_S = 1.0


def ready_database() -> str | None:
    """``SELECT 1`` on the database: None when it answers, else the error in one line.

    Connecting waits at most the URL's ``connect_timeout`` (default 5 s, see db/database.py).
    """
    try:
        with database.connection():
            database.db.execute_sql("SELECT 1").fetchone()
    except Exception as exc:
        return _one_line(exc)
    return None


def ready_broker() -> str | None:
    """PING to the broker's Redis within a second: None when it answers, else the error."""
    import redis

    from workers import broker

    try:
        client = redis.Redis.from_url(
            broker.redis_url(),
            socket_connect_timeout=READY_REDIS_TIMEOUT_S,
            socket_timeout=READY_REDIS_TIMEOUT_S,
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return _one_line(exc)
    return None


def readiness() -> tuple[dict, bool]:
    """``({"database": "ok"|error, "broker": "ok"|error}, all ok)`` for ``/readyz``."""
    errors = {"database": ready_database(), "broker": ready_broker()}
    return {part: error or "ok" for part, error in errors.items()}, not any(errors.values())


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
