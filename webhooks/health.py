"""Checks for ``/status``, ``/readyz`` and the CLI: are the database and broker there?"""

from __future__ import annotations

import time

from db import database, migrate

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
        return {"ok": False, "backend": database.dialect(), "error": _one_line(exc)}
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
        return {"ok": False, "error": _one_line(exc)}
    return {
        "ok": True,
        "kind": "embedded" if url.startswith("unix://") else "redis",
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def ready_database() -> str | None:
    """None when the database answers ``SELECT 1``, else the error in one line."""
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
    """``({"database": "ok"|error, "broker": "ok"|error}, all ok)`` for ``/readyz``."""
    errors = {"database": ready_database(), "broker": ready_broker()}
    return {part: error or "ok" for part, error in errors.items()}, not any(errors.values())


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
