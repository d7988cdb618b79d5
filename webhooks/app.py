"""The Flask application factory (served by gunicorn: ``webhooks.app:create_app()``).

Later issues add the inbound-email webhooks and one-click links; here live the
app skeleton, per-request database connections and the health endpoint.
"""

from __future__ import annotations

from flask import Flask, jsonify

from db import database
from psymatch import settings

from . import devmail, health, inbound, observability, security_headers


def create_app(test_config: dict | None = None) -> Flask:
    settings.require_secrets()  # refuse a remote demo, and demo, missing or weak secrets
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=1 * 1024 * 1024, JSON_AS_ASCII=False)
    if test_config:
        app.config.update(test_config)
    if database.db.obj is None:
        database.init(app.config.get("DATABASE_URL"))

    # peewee connects on the first query of a request; close it when the request ends.
    @app.teardown_request
    def _close_db(exc):
        if not database.db.is_closed():
            database.db.close()

    @app.get("/healthz")
    def healthz():
        """Liveness: the process answers (restart it when this fails). No dependencies."""
        return jsonify(status="alive"), 200

    @app.get("/status")
    def status():
        """Diagnostics for people: database and broker reachable, with timings, and the
        schema at head: 200, else 503. Needs the bearer token (``METRICS_TOKEN``); failure
        texts name the part ("database unavailable"), never a host or URL."""
        refused = observability.refuse_unauthorized("status")
        if refused is not None:
            return refused
        checks = {"database": health.check_database(), "broker": health.check_broker()}
        ok = all(check["ok"] for check in checks.values())
        return jsonify(status="ok" if ok else "unavailable", **checks), 200 if ok else 503

    @app.get("/readyz")
    def readyz():
        """Ready for traffic: ``SELECT 1`` and a Redis PING answer (200), else 503.
        Open (load balancers probe it) and therefore without details: "ok" or
        "unavailable" per part."""
        parts, ok = health.readiness()
        return jsonify(parts), 200 if ok else 503

    security_headers.register(app)  # nosniff, CSP frame-ancestors, no-referrer, no-store
    observability.register(app)  # request ids, request metrics, GET /metrics
    devmail.register(app)  # /dev/mail, only in demo mode with the local mail sink
    inbound.register(app)  # /webhooks/inbound/*, /r/<token>
    return app
