"""GET /healthz: alive; GET /status: the database, the schema and the broker in detail."""

from __future__ import annotations

import pytest

from db import migrate
from psymatch import settings
from webhooks.app import create_app


@pytest.fixture
def client(clean_db):
    return create_app({"TESTING": True}).test_client()


@pytest.fixture
def redis_at():
    previous = settings.get().REDIS_URL

    def point(url):
        settings.override(REDIS_URL=url)

    yield point
    settings.override(REDIS_URL=previous)


def test_healthz_is_liveness_only(redis_at):
    """Alive even with the broker and the database away: a restart would not help."""
    from db import database

    redis_at("redis://127.0.0.1:1/0")
    database.init("postgresql://nobody@127.0.0.1:1/none")
    try:
        response = create_app({"TESTING": True}).test_client().get("/healthz")
    finally:
        database.init(settings.get().DATABASE_URL)
    assert response.status_code == 200
    assert response.get_json() == {"status": "alive"}


def test_healthy(client, redis_url, redis_at, backend):
    redis_at(redis_url)
    response = client.get("/status")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["database"]["backend"] == backend
    assert body["database"]["schema_version"] == migrate.head_version()
    assert body["broker"] == {**body["broker"], "ok": True, "kind": "redis"}


def test_broker_down_is_503_naming_the_part(client, redis_at):
    redis_at("redis://127.0.0.1:1/0")
    response = client.get("/status")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    # the part, not the cause: exception texts name hosts (they go to the log)
    assert body["broker"] == {"ok": False, "error": "broker unavailable"}


def test_database_down_is_503(redis_url, redis_at, tmp_path):
    redis_at(redis_url)
    from db import database

    database.init("postgresql://nobody@127.0.0.1:1/none")
    try:
        response = create_app({"TESTING": True}).test_client().get("/status")
    finally:
        database.init(settings.get().DATABASE_URL)
    assert response.status_code == 503
    assert response.get_json()["database"]["ok"] is False
    assert response.get_json()["database"]["error"] == "database unavailable"
    assert "127.0.0.1" not in response.get_data(as_text=True)
