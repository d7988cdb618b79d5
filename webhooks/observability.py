"""Request ids, HTTP metrics and ``GET /metrics`` for the web app.

Every request gets a ``request_id``: the caller's ``X-Request-ID`` when it is a sane token
(1-128 characters of letters, digits, ``.``, ``_``, ``-``, ``:``), else a new one; it is in
every log line of the request (``psymatch.logs``) and echoed in the ``X-Request-ID``
response header.

Metrics (prometheus_client):

* ``psymatch_http_requests_total{route,method,status}``: answered requests; ``route`` is
  the URL rule (``/r/<token>``), ``unmatched`` for unknown paths, so labels stay few;
* ``psymatch_http_request_duration_seconds{route}``: latency histogram;
* ``psymatch_webhook_rejections_total{reason}``: refused webhooks and link clicks by
  ``reason`` (``rejection_reason``);
* the domain gauges of ``webhooks.domain_metrics``, computed at scrape time.

Under gunicorn (several worker processes) the values live in files in the multiprocess
directory that ``webhooks/gunicorn_conf.py`` sets up, and ``/metrics`` sums them, so any
worker answers for all. Without it (tests, ``flask run``) they live in this process.
Access (``/metrics`` and ``/status``, ``refuse_unauthorized``): with ``METRICS_TOKEN`` set
they need ``Authorization: Bearer <token>`` (else 401). In production without a token
they answer 404, as if they did not exist: nothing about the deployment is served
unauthenticated. In demo mode without a token they are open (the laptop, on 127.0.0.1).
"""

from __future__ import annotations

import os
import re
import time

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from psymatch import logs, ops_access, settings

REGISTRY = CollectorRegistry(auto_describe=True)  # this process's values (no multiprocess)

REQUESTS = Counter(
    "psymatch_http_requests",
    "HTTP requests answered by the web app.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "psymatch_http_request_duration_seconds",
    "Time from the start of a request to its response, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
REJECTIONS = Counter(
    "psymatch_webhook_rejections",
    "Webhook deliveries and link clicks refused, by reason.",
    ["reason"],
    registry=REGISTRY,
)

REJECTION_REASONS = (
    "forged_signature",
    "stale",
    "replayed",
    "malformed",
    "oversize",
    "wrong_content_type",
    "unknown_token",
    "database_down",
)
_REJECTING_PREFIXES = ("/webhooks/", "/r/", "/v/")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STARTED = "psymatch.started"  # WSGI environ keys of this module
_ID = "psymatch.request_id"


def rejection_reason(status: int, code: str | None = None) -> str | None:
    """Why a webhook or link request was refused, from its status and error code.

    401 forged signature, credentials or link; 406 replayed token (``token_reused``) or
    stale (timestamp outside the window, expired link); 400 malformed; 413 oversize;
    415 wrong content type; 404 unknown token (a link naming no Anfrage or patient);
    503 database down. Anything else (2xx, 405, ...) is no rejection: ``None``.
    """
    if status == 406:
        return "replayed" if code == "token_reused" else "stale"
    return {
        400: "malformed",
        401: "forged_signature",
        404: "unknown_token",
        413: "oversize",
        415: "wrong_content_type",
        503: "database_down",
    }.get(status)


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is a sane token, else a new one (32 hex digits)."""
    if header and _REQUEST_ID.match(header):
        return header
    return os.urandom(16).hex()


# Label children cached per process: ``labels()`` costs a lock and a tuple per call.
_request_children: dict[tuple[str, str, int], object] = {}
_latency_children: dict[str, object] = {}


def _start():
    environ = request.environ
    environ[_STARTED] = time.perf_counter()
    rid = environ[_ID] = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
    logs.request_id.set(rid)


def _finish(response: Response) -> Response:
    req = request._get_current_object()
    environ = req.environ
    rule = req.url_rule
    route = rule.rule if rule is not None else "unmatched"
    status = response.status_code
    started = environ.get(_STARTED)
    if started is not None:
        latency = _latency_children.get(route)
        if latency is None:
            latency = _latency_children[route] = LATENCY.labels(route)
        latency.observe(time.perf_counter() - started)
    key = (route, req.method, status)
    counter = _request_children.get(key)
    if counter is None:
        counter = _request_children[key] = REQUESTS.labels(route, req.method, str(status))
    counter.inc()
    if status >= 400 and route.startswith(_REJECTING_PREFIXES):
        body = response.get_json(silent=True) if response.is_json else None
        code = body.get("error") if isinstance(body, dict) else None
        reason = rejection_reason(status, code)
        if reason is not None:
            REJECTIONS.labels(reason).inc()
    response.headers["X-Request-ID"] = environ.get(_ID) or request_id_from(None)
    return response


def _forget(_exc=None):
    logs.request_id.set(None)


def refuse_unauthorized(realm: str):
    """None when the request may read an operational endpoint, else the refusal to return:
    401 without the right bearer token, 404 in production when no token is configured
    (``psymatch.ops_access``, the same rule as the worker pool's metrics)."""
    verdict = ops_access.decide(request.headers.get("Authorization"))
    if verdict == ops_access.ALLOWED:
        return None
    if verdict == ops_access.NOT_FOUND:
        return {"status": "rejected", "error": "not_found"}, 404
    return (
        {"status": "rejected", "error": "unauthorized", "message": "bearer token required"},
        401,
        {"WWW-Authenticate": f'Bearer realm="{realm}"'},
    )


class _Local:
    """Adds this process's metrics to a scrape registry (single-process mode)."""

    def collect(self):
        return REGISTRY.collect()


def render() -> bytes:
    """The exposition text: web metrics (all gunicorn workers) plus the domain gauges."""
    from webhooks.domain_metrics import DomainCollector

    registry = CollectorRegistry()
    directory = settings.prometheus_multiprocess_dir()
    if directory:
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_Local())
    registry.register(DomainCollector())
    return generate_latest(registry)


def metrics_view():
    refused = refuse_unauthorized("metrics")
    if refused is not None:
        return refused
    return Response(render(), status=200, content_type=CONTENT_TYPE_LATEST)


def register(app: Flask) -> None:
    """Install request ids, request metrics and ``GET /metrics`` (idempotent)."""
    if "metrics" in app.view_functions:
        return
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_forget)
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
