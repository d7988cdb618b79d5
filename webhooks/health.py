"""Health checks shared by ``/healthz`` and the CLI: is the database and the broker there?"""

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


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
