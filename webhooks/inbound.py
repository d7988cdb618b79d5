"""``/webhooks/inbound/<provider>``: email replies delivered by Mailgun, Postmark or raw.

Bounces come as delivery reports among the replies, as Postmark bounce webhooks (same
URL, ``RecordType: Bounce``) or as Mailgun ``failed`` events (``/mailgun/events``, JSON
signed inside); all are stored like replies and processed by ``operations.replies``.

Each view checks, in this order: size (413, ``WEBHOOK_MAX_BYTES``), content type (415),
authenticity (401; Mailgun: stale timestamp 406), shape (400; also structure beyond the
bounds of ``webhooks.providers``: ``too_deep``, ``too_many_parts``). Only then is the delivery,
decoded by ``webhooks.providers``, stored: one ``InboundMessage`` keyed by the provider
message id, the outbox item ``process_reply`` and (Mailgun) the token's replay marker, in
one transaction (``operations.replies.store_inbound``; a reused token: 406).
New -> 202, duplicate -> 200 (stored and processed once). A refused request writes
nothing. When the database cannot be reached the answer is 503 with a JSON body, so the
provider delivers again later. Processing happens in the ``process_reply`` actor, which
the outbox relay enqueues; the request does not wait for it.

``register(app)`` adds the blueprint once (and ``webhooks.links`` for ``/r/<token>``).
"""

from __future__ import annotations

import datetime as dt
import logging
import random

import peewee
from flask import Blueprint, Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from db import database
from db.models import utcnow
from operations.replies import TokenReused, forget_replay_markers, store_delivery
from psymatch import settings

from . import providers
from .providers import Normalised, Rejected

log = logging.getLogger(__name__)
bp = Blueprint("inbound", __name__, url_prefix="/webhooks/inbound")

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
RAW_TYPES = ("message/rfc822", "application/octet-stream")
DB_DOWN = (peewee.OperationalError, peewee.InterfaceError)
FORGET_SHARE = 0.01  # share of token deliveries that also delete expired markers


def _error(status: int, code: str, message: str = ""):
    return jsonify(status="rejected", error=code, message=message or code), status


@bp.errorhandler(Rejected)
def _rejected(error: Rejected):
    return _error(error.status, error.code, error.message)


def too_large_message(limit: int) -> str:
    """The 413 text: the one size limit of the webhooks, by name and value."""
    return f"the request body is larger than WEBHOOK_MAX_BYTES ({limit} bytes)"


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_error_obj):
    # Only the body size can raise it here: Flask's per-field limit is set to the same
    # value and the form is parsed from a body already read within it (``mailgun``).
    return _error(413, "too_large", too_large_message(settings.get().WEBHOOK_MAX_BYTES))


@bp.errorhandler(HTTPException)
def _http(error: HTTPException):  # werkzeug's own 400s (broken multipart, ...) as JSON
    return _error(error.code or 400, "malformed", error.description or "")


@bp.before_request
def _limit_size():
    """One size limit for the webhooks: ``WEBHOOK_MAX_BYTES`` replaces the app's
    ``MAX_CONTENT_LENGTH`` and Flask's own per-field ``MAX_FORM_MEMORY_SIZE``, so a 413
    always names the limit that applied."""
    limit = settings.get().WEBHOOK_MAX_BYTES
    request.max_content_length = limit
    request.max_form_memory_size = limit
    request.max_form_parts = providers.FORM_MAX_PARTS
    if request.content_length is not None and request.content_length > limit:
        raise Rejected(413, "too_large", too_large_message(limit))


def _require_type(allowed: tuple[str, ...]) -> None:
    if request.mimetype not in allowed:
        raise Rejected(415, "unsupported_media_type", f"expected {' or '.join(allowed)}")


def _body() -> bytes:
    return request.get_data(cache=True)


def _store_once(normalised: Normalised, token: str | None):
    """``(row id, created)``; ``Rejected`` 406 for a reused Mailgun token."""
    replay = None if token is None else providers.replay_marker(token)
    with database.connection():
        if replay is not None and random.random() < FORGET_SHARE:
            window = dt.timedelta(seconds=providers.replay_window_s())
            forget_replay_markers(utcnow() - window)
        try:
            row, created = store_delivery(normalised, replay=replay)
        except TokenReused as reused:
            raise Rejected(406, "token_reused", reused.message) from None
        return row.id, created


def store(normalised: Normalised, token: str | None = None):
    """Store a verified delivery; the HTTP answer (202 new, 200 duplicate, 503 no DB).

    A database error is tried once more on a fresh connection: a pooled connection
    may have died with a server restart (see ``db.database.RecentlyUsedPool``). Storing
    is idempotent, so a first attempt that did commit turns the second into "duplicate".
    """
    try:
        try:
            row_id, created = _store_once(normalised, token)
        except DB_DOWN:
            row_id, created = _store_once(normalised, token)
    except DB_DOWN as exc:
        log.warning("inbound %s: database unavailable: %s", normalised.provider, exc)
        return jsonify(status="unavailable", error="database_unavailable"), 503
    if created:
        return jsonify(status="accepted", id=row_id), 202
    return jsonify(status="duplicate", id=row_id), 200


def _form():
    """The posted form within ``FORM_MAX_PARTS`` fields and files (400 otherwise).

    The body is read first (a 413 here is the size limit); werkzeug then parses the read
    bytes, and its own 413 can only mean too many multipart parts."""
    body = _body()
    most = providers.FORM_MAX_PARTS
    too_many = Rejected(400, "too_many_parts", f"more than {most} form fields")
    if request.mimetype == "application/x-www-form-urlencoded" and body.count(b"&") >= most:
        raise too_many
    try:
        form = request.form
        request.files  # noqa: B018 (parsed together with the form)
    except RequestEntityTooLarge:
        raise too_many from None
    if len(list(form.items(multi=True))) + len(list(request.files.items(multi=True))) > most:
        raise too_many
    return form


@bp.post("/mailgun")
def mailgun():
    _require_type(FORM_TYPES)
    form = _form()
    fields = {name: form.get(name) for name in form}
    providers.verify_mailgun(fields)
    attachments = [f.filename or name for name, f in request.files.items()]
    normalised = providers.normalise_mailgun(fields, attachments)
    return store(normalised, token=fields["token"])


@bp.post("/mailgun/events")
def mailgun_events():
    """Mailgun's event webhook: ``failed`` events (bounces) as JSON, signed inside."""
    _require_type(("application/json",))
    normalised, token = providers.normalise_mailgun_event(_body())
    return store(normalised, token=token)


@bp.post("/postmark")
def postmark():
    auth = request.authorization
    if auth is None or auth.type != "basic":
        raise Rejected(401, "unauthorized", "basic auth required")
    providers.verify_postmark(auth.username, auth.password)
    _require_type(("application/json",))
    return store(providers.normalise_postmark(_body()))


@bp.post("/raw")
def raw():
    _require_type(RAW_TYPES)
    body = _body()
    providers.verify_raw(body, request.headers.get("X-Psymatch-Signature"))
    return store(providers.normalise_raw(body))


def register(app: Flask) -> None:
    """Add the inbound webhooks and the one-click link pages (idempotent)."""
    from . import links

    if bp.name not in app.blueprints:
        app.register_blueprint(bp)
    links.register(app)
