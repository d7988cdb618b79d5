"""Checks for ``/status``, ``/readyz`` and the CLI: are the database and broker there?

A failure is answered as "database unavailable" / "broker unavailable" only: exception
texts name hosts, ports and URLs (``could not connect to server at "db.internal"``), so
they go to the log (for operators), never into a response.
"""

from __future__ import annotations

import logging
import time

from db import database, migrate

log = logging.getLogger(__name__)

READY_REDIS_TIMEOUT_S = 1.0


def _ping_database() -> None:
    """``SELECT 1``; connecting waits at most the URL's ``connect_timeout`` (default 5 s)."""
    database.db.execute_sql("SELECT 1").fetchone()


def _ping_broker(timeout_s: float) -> str:
    """PING the broker's Redis; returns its URL."""
    import redis

    from workers import broker

    url = broker.redis_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        client.ping()
    finally:
        client.close()
    return url


def check_database() -> dict:
    started = time.perf_counter()
    try:
        with database.connection():
            _ping_database()
            version, head = migrate.current_version(), migrate.head_version()
    except Exception as exc:  # any failure is the answer, not an error of the check
        _log_failure("database", exc)
        return {"ok": False, "backend": database.dialect(), "error": DATABASE_UNAVAILABLE}
    return {
        "ok": version == head,
        "backend": database.dialect(),
        "schema_version": version,
        "schema_head": head,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def check_broker() -> dict:
    started = time.perf_counter()
    try:
        url = _ping_broker(timeout_s=2)
    except Exception as exc:
        _log_failure("broker", exc)
        return {"ok": False, "error": BROKER_UNAVAILABLE}
    return {
        "ok": True,
        "kind": "embedded" if url.startswith("unix://") else "redis",
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def ready_database() -> str | None:
    """None when the database answers ``SELECT 1``, else the error in one line (for the
    log and the CLI of operators, never for a response)."""
    try:
        with database.connection():
            _ping_database()
    except Exception as exc:
        return _one_line(exc)
    return None


def ready_broker() -> str | None:
    """None when the broker's Redis answers a PING within a second, else the error."""
    try:
        _ping_broker(READY_REDIS_TIMEOUT_S)
    except Exception as exc:
        return _one_line(exc)
    return None


def readiness() -> tuple[dict, bool]:
    """``({"database": "ok"|"unavailable", "broker": ...}, all ok)`` for ``/readyz``:
    no error texts (the endpoint is open); they are logged instead."""
    errors = {"database": ready_database(), "broker": ready_broker()}
    for part, error in errors.items():
        if error:
            log.warning("readiness: %s unavailable: %s", part, error)
    parts = {part: "unavailable" if error else "ok" for part, error in errors.items()}
    return parts, not any(errors.values())


DATABASE_UNAVAILABLE = "database unavailable"
BROKER_UNAVAILABLE = "broker unavailable"


def _log_failure(part: str, exc: Exception) -> None:
    log.warning("status check: %s unavailable: %s", part, _one_line(exc))


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
