"""Operations on inbound replies: store one, process one, decide one from the review queue.

Each function is one transaction (``write_transaction``); nested operations such as
``record_response`` run inside it as a savepoint, so the reply's status and the recorded
answer commit together or not at all.

``store_inbound``
    Inserts the raw payload keyed by ``message_key`` (a second delivery of the same
    message finds the row and changes nothing) and, in the same transaction, the outbox
    item ``process_reply`` that makes a worker process it (architecture.md 3).
``process_inbound``
    Idempotent: a reply whose status is no longer ``neu`` is left alone. Email replies:
    auto-reply -> ``ignoriert``; Anfrage not identified -> ``pruefung``; otherwise the
    reply is understood (``psymatch.domain.reply_parse``); an unambiguous answer becomes
    ``record_response(source="email")`` -> ``verarbeitet``, anything else -> ``pruefung``
    with the reason. One-click links (provider ``link``) are collected per Anfrage until
    every pending patient has a click, then recorded together (see ``webhooks/links.py``).
``decide_review`` / ``dismiss_review``
    Staff resolve a reply in the review queue: record the answer they read, or ignore it.

The stored raw payload per provider (``message_from_payload`` turns it back into a
``Message``): ``mailgun`` the JSON object of the form fields as posted; ``postmark`` the
JSON body as posted; ``raw`` the JSON object ``{"rfc822": text}`` (or ``{"rfc822_base64":
...}`` when the bytes are not clean UTF-8); ``link`` ``{"anfrage_id", "patient_id",
"answer", "token"}``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from email.utils import getaddresses

from db.database import is_postgres, locked, write_transaction
from db.models import (
    InboundMessage,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    utcnow,
)
from operations import audit, outbox
from operations.errors import OperationError
from operations.responses import record_response

TASK = "process_reply"
NEEDS_ANSWER = ("anstehend", "keine_antwort")


def dedupe_key(inbound_id: int) -> str:
    return outbox.key(TASK, inbound_id)


# --- store -------------------------------------------------------------------------------


def store_inbound(
    provider: str,
    message_key: str,
    raw_payload: str,
    sender: str | None,
    recipient: str | None,
    subject: str | None,
    *,
    anfrage_id: int | None = None,
    now: dt.datetime | None = None,
    full_row: bool = True,
) -> tuple[InboundMessage, bool]:
    """Store a delivery once; returns ``(row, created)``.

    A new row gets its ``process_reply`` outbox item in the same transaction (on
    PostgreSQL in the same statement); a duplicate (same ``message_key``) returns
    the existing row and writes nothing. With ``full_row=False`` a duplicate's row
    holds only ``id`` and ``message_key`` (the webhook needs no more, and on
    PostgreSQL it then costs no second query).
    """
    now = now or utcnow()
    values = {
        "provider": provider,
        "message_key": message_key,
        "received_at": now,
        "raw_payload": raw_payload,
        "sender": sender,
        "recipient": recipient,
        "subject": subject,
        "therapeutenanfrage": anfrage_id,
        "status": "neu",
    }
    if is_postgres():
        row_id, created = _insert_with_outbox_pg(values, now)
        if created:
            return InboundMessage(id=row_id, **values), True
        if row_id is not None and not full_row:
            return InboundMessage(id=row_id, message_key=message_key), False
        # a concurrent first delivery committed after this statement's snapshot
        return InboundMessage.get(InboundMessage.message_key == message_key), False
    with write_transaction():  # SQLite: BEGIN IMMEDIATE holds the write lock: look, then insert
        existing = InboundMessage.get_or_none(InboundMessage.message_key == message_key)
        if existing is not None:
            return existing, False
        new_id = InboundMessage.insert(**values).execute()
        outbox.put(TASK, {"inbound_id": new_id}, dedupe_key(new_id), now=now)
        return InboundMessage(id=new_id, **values), True


# The process_reply outbox row of the message the ``stored`` CTE inserted (if it did).
_QUEUE_STORED = f"""queued AS (
    INSERT INTO "outbox" ("task", "payload", "dedupe_key", "status", "created_at", "attempts")
    SELECT '{TASK}', jsonb_build_object('inbound_id', "id"), '{TASK}:' || "id", 'offen',
        {{now}}, 0
    FROM stored
    RETURNING 1
)"""

_PG_INSERT_WITH_OUTBOX = f"""
WITH stored AS (
    INSERT INTO "inbound_messages" ("provider", "message_key", "received_at", "raw_payload",
        "sender", "recipient", "subject", "therapeutenanfrage_id", "status")
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT ("message_key") DO NOTHING
    RETURNING "id"
), {_QUEUE_STORED.format(now="%s")}
SELECT "id", TRUE FROM stored
UNION ALL
SELECT "id", FALSE FROM "inbound_messages"
WHERE "message_key" = %s AND NOT EXISTS (SELECT 1 FROM stored)
"""


def _insert_with_outbox_pg(values: dict, now) -> tuple[int | None, bool]:
    """PostgreSQL: the message and its outbox row in ONE statement (atomic by itself, no
    BEGIN/COMMIT round trips on the webhook's hot path), which also answers a duplicate
    with the existing id: ``(id, True)`` new, ``(id, False)`` duplicate, ``(None, False)``
    a duplicate whose first delivery committed while this statement ran."""
    from db.database import db

    params = [
        values[name]
        for name in (
            "provider",
            "message_key",
            "received_at",
            "raw_payload",
            "sender",
            "recipient",
            "subject",
            "therapeutenanfrage",
            "status",
        )
    ]
    row = db.execute_sql(_PG_INSERT_WITH_OUTBOX, (*params, now, values["message_key"])).fetchone()
    return (row[0], bool(row[1])) if row else (None, False)


_PG_INSERT_WITH_MARKER = f"""
WITH marker AS (
    INSERT INTO "inbound_messages" ("provider", "message_key", "received_at", "raw_payload",
        "status", "processed_at", "review_reason")
    VALUES (%(marker_provider)s, %(marker_key)s, %(now)s, %(message_key)s, 'ignoriert',
        %(now)s, %(marker_reason)s)
    ON CONFLICT ("message_key") DO NOTHING
    RETURNING "id"
), allowed AS (
    SELECT EXISTS (SELECT 1 FROM marker)
        OR EXISTS (SELECT 1 FROM "inbound_messages"
                   WHERE "message_key" = %(marker_key)s AND "raw_payload" = %(message_key)s)
        AS ok
), stored AS (
    INSERT INTO "inbound_messages" ("provider", "message_key", "received_at", "raw_payload",
        "sender", "recipient", "subject", "therapeutenanfrage_id", "status")
    SELECT %(provider)s, %(message_key)s, %(now)s, %(raw_payload)s, %(sender)s,
        %(recipient)s, %(subject)s, %(therapeutenanfrage)s, 'neu'
    WHERE (SELECT ok FROM allowed)
    ON CONFLICT ("message_key") DO NOTHING
    RETURNING "id"
), {_QUEUE_STORED.format(now="%(now)s")}
SELECT (SELECT ok FROM allowed), (SELECT "id" FROM stored),
    (SELECT "id" FROM "inbound_messages" WHERE "message_key" = %(message_key)s)
"""


def store_with_token_marker_pg(
    marker: tuple[str, str, str],
    provider: str,
    message_key: str,
    raw_payload: str,
    sender: str | None,
    recipient: str | None,
    subject: str | None,
    *,
    now: dt.datetime | None = None,
) -> tuple[bool, int | None, bool]:
    """PostgreSQL: a Mailgun token's replay marker, the message and its outbox item in
    ONE statement (no separate replay store on the webhook's hot path).

    ``marker`` is (provider, key, reason) of the marker row, whose ``raw_payload`` is
    ``message_key``: the token is new, or was seen with this same message (a duplicate
    delivery), or was seen with another one (a replay). Returns ``(allowed, id,
    created)``. When a concurrent delivery with the same token committed while this
    statement ran, its rows are not in this statement's snapshot: a second look decides.
    """
    from db.database import db

    now = now or utcnow()
    params = {
        "marker_provider": marker[0],
        "marker_key": marker[1],
        "marker_reason": marker[2],
        "now": now,
        "provider": provider,
        "message_key": message_key,
        "raw_payload": raw_payload,
        "sender": sender,
        "recipient": recipient,
        "subject": subject,
        "therapeutenanfrage": None,
    }
    allowed, stored_id, existing_id = db.execute_sql(_PG_INSERT_WITH_MARKER, params).fetchone()
    if stored_id is not None:
        return True, stored_id, True
    if not allowed:  # maybe a race: look again with a fresh snapshot
        seen = (
            InboundMessage.select(InboundMessage.raw_payload)
            .where(InboundMessage.message_key == marker[1])
            .scalar()
        )
        if seen != message_key:
            return False, None, False
    if existing_id is None:
        existing_id = (
            InboundMessage.select(InboundMessage.id)
            .where(InboundMessage.message_key == message_key)
            .scalar()
        )
    return True, existing_id, False


# --- payload -> Message --------------------------------------------------------------------


def _split_ids(value) -> list[str]:
    if not value:
        return []
    return [part for part in str(value).replace(",", " ").split() if part]


def _addresses(*values) -> list[str]:
    texts = [v for v in values if isinstance(v, str) and v]
    return [addr for _, addr in getaddresses(texts) if addr]


def _header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


def _as_dict(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Header pairs as the dict ``parse.message_from_parts`` takes (first value wins)."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name.lower() not in seen:
            seen.add(name.lower())
            out[name] = value
    return out


def mailgun_headers(fields: dict) -> list[tuple[str, str]]:
    text = fields.get("message-headers")
    if not text:
        return []
    pairs = json.loads(text)
    return [(str(name), str(value)) for name, value in pairs]


def postmark_headers(data: dict) -> list[tuple[str, str]]:
    return [(str(h["Name"]), str(h["Value"])) for h in data.get("Headers") or []]


def message_from_payload(provider: str, raw_payload: str):
    """The ``parse.Message`` of a stored delivery (email providers only)."""
    from psymatch.domain import reply_parse as parse

    if provider == "raw":
        data = json.loads(raw_payload)
        raw = (
            data["rfc822"].encode("utf-8")
            if "rfc822" in data
            else base64.b64decode(data["rfc822_base64"])
        )
        return parse.message_from_bytes(raw)
    if provider == "mailgun":
        fields = json.loads(raw_payload)
        headers = mailgun_headers(fields)
        to_header = _header_value(headers, "To")
        cc_header = _header_value(headers, "Cc")
        recipients = _addresses(fields.get("recipient"), to_header, cc_header)
        return parse.message_from_parts(
            subject=fields.get("subject") or _header_value(headers, "Subject") or "",
            sender=fields.get("from") or fields.get("sender") or "",
            recipients=recipients,
            text=fields.get("body-plain") or fields.get("stripped-text"),
            html=fields.get("body-html"),
            headers=_as_dict(headers),
            message_id=fields.get("Message-Id") or _header_value(headers, "Message-Id"),
            in_reply_to=_split_ids(
                fields.get("In-Reply-To") or _header_value(headers, "In-Reply-To")
            ),
            references=_split_ids(fields.get("References") or _header_value(headers, "References")),
        )
    if provider == "postmark":
        data = json.loads(raw_payload)
        headers = postmark_headers(data)
        full = [
            item.get("Email")
            for key in ("ToFull", "CcFull")
            for item in data.get(key) or []
            if isinstance(item, dict) and item.get("Email")
        ]
        recipients = list(
            dict.fromkeys(
                _addresses(data.get("To"), data.get("Cc"), data.get("OriginalRecipient")) + full
            )
        )
        return parse.message_from_parts(
            subject=data.get("Subject") or "",
            sender=data.get("From") or "",
            recipients=recipients,
            text=data.get("TextBody") or data.get("StrippedTextReply"),
            html=data.get("HtmlBody"),
            headers=_as_dict(headers),
            message_id=_header_value(headers, "Message-ID") or data.get("MessageID"),
            in_reply_to=_split_ids(_header_value(headers, "In-Reply-To")),
            references=_split_ids(_header_value(headers, "References")),
        )
    raise ValueError(f"no message for provider {provider!r}")


# --- process -------------------------------------------------------------------------------


def _safe(value):
    """Text from a reply made storable anywhere (PostgreSQL refuses NUL and lone surrogates)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    if isinstance(value, dict):
        return {_safe(str(k)): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def _finish(inbound, status: str, now, *, reason: str | None = None, result=None) -> str:
    inbound.status = status
    inbound.processed_at = now if status != "neu" else None
    if reason is not None:
        inbound.review_reason = _safe(reason)[:2000]
    if result is not None:
        inbound.result = _safe(result)
    inbound.save()
    return status


def _decision_dict(decision) -> dict:
    if dataclasses.is_dataclass(decision):
        data = dataclasses.asdict(decision)
    else:
        data = {k: getattr(decision, k) for k in ("decisions", "review", "reason")}
    data["decisions"] = {str(k): v for k, v in (data.get("decisions") or {}).items()}
    return json.loads(json.dumps(data, default=str))


def _lines(anfrage_id: int) -> list[TherapeutAnfragePatient]:
    return list(
        TherapeutAnfragePatient.select()
        .where(TherapeutAnfragePatient.therapeutenanfrage == anfrage_id)
        .order_by(TherapeutAnfragePatient.position_in_anfrage)
    )


def is_answered(anfrage: Therapeutenanfrage) -> bool:
    """Answered by the therapist (a closure without response still takes an answer)."""
    return anfrage.antwort_datum is not None and anfrage.antworttyp != "keine_Antwort"


def process_inbound(inbound_id: int, now: dt.datetime | None = None) -> str:
    """Process one stored delivery; returns its status afterwards (``neu`` = still waiting)."""
    now = now or utcnow()
    with write_transaction():
        inbound = locked(InboundMessage.select().where(InboundMessage.id == inbound_id)).first()
        if inbound is None:
            return "unbekannt"
        if inbound.status != "neu":
            return inbound.status
        if inbound.provider == "link":
            return _process_click(inbound, now)
        return _process_email(inbound, now)


def _process_email(inbound: InboundMessage, now) -> str:
    from psymatch.domain import reply_parse as parse

    try:
        message = message_from_payload(inbound.provider, inbound.raw_payload)
        auto = parse.is_auto_reply(message)
        anfrage_id = None if auto else parse.identify_anfrage(message)
    except Exception as exc:  # an unreadable payload is data, not a reason to retry
        return _finish(inbound, "fehler", now, reason=f"Nachricht nicht lesbar: {exc!r}")
    if auto:
        return _finish(inbound, "ignoriert", now, reason=f"Automatische Antwort: {auto}")
    anfrage = Therapeutenanfrage.get_or_none(Therapeutenanfrage.id == anfrage_id)
    if anfrage is None:
        return _finish(inbound, "pruefung", now, reason="Anfrage nicht erkannt")
    inbound.therapeutenanfrage = anfrage.id
    lines = _lines(anfrage.id)
    try:
        decision = parse.understand(message, [line.patient_id for line in lines])
    except Exception as exc:
        return _finish(inbound, "fehler", now, reason=f"Antwort nicht auswertbar: {exc!r}")
    result = {"decision": _decision_dict(decision)}
    if decision.review:
        reason = decision.reason or "Antwort nicht eindeutig"
        return _finish(inbound, "pruefung", now, reason=reason, result=result)
    try:
        response = record_response(
            anfrage.id, dict(decision.decisions), actor="email", now=now, source="email"
        )
    except OperationError as error:
        result["error"] = error.as_dict()
        reason = f"{error.code}: {error.message}"
        return _finish(inbound, "pruefung", now, reason=reason, result=result)
    result["response"] = response.as_dict()
    _retire_clicks(anfrage.id, now, "Anfrage per E-Mail beantwortet")
    return _finish(inbound, "verarbeitet", now, result=result)


def _retire_clicks(anfrage_id: int, now, reason: str) -> None:
    """Link clicks still waiting for the rest of the bundle are moot once it is answered."""
    InboundMessage.update(status="ignoriert", review_reason=reason, processed_at=now).where(
        (InboundMessage.provider == "link")
        & (InboundMessage.therapeutenanfrage == anfrage_id)
        & (InboundMessage.status == "neu")
    ).execute()


def click_claim(inbound: InboundMessage) -> dict:
    return json.loads(inbound.raw_payload)


def _process_click(inbound: InboundMessage, now) -> str:
    claim = click_claim(inbound)
    anfrage = locked(
        Therapeutenanfrage.select().where(Therapeutenanfrage.id == claim["anfrage_id"])
    ).first()
    if anfrage is None:
        return _finish(inbound, "pruefung", now, reason="Anfrage nicht gefunden")
    lines = _lines(anfrage.id)
    line = next((li for li in lines if li.patient_id == claim["patient_id"]), None)
    if line is None:
        return _finish(inbound, "pruefung", now, reason="Patient nicht in dieser Anfrage")
    if is_answered(anfrage):
        if line.antwortergebnis == claim["answer"]:
            return _finish(inbound, "ignoriert", now, reason="Anfrage bereits beantwortet")
        reason = (
            f"ALREADY_ANSWERED: A{anfrage.id} ist bereits beantwortet "
            f"(vermerkt: {line.antwortergebnis}, Klick: {claim['answer']})"
        )
        return _finish(inbound, "pruefung", now, reason=reason)
    clicks = list(
        locked(
            InboundMessage.select().where(
                (InboundMessage.provider == "link")
                & (InboundMessage.therapeutenanfrage == anfrage.id)
                & (InboundMessage.status == "neu")
            )
        ).order_by(InboundMessage.id)
    )
    if inbound.id not in {c.id for c in clicks}:
        clicks.append(inbound)
    answers = {}
    for click in clicks:
        data = click_claim(click)
        answers.setdefault(data["patient_id"], data["answer"])
    in_bundle = {li.patient_id for li in lines}
    needed = {li.patient_id for li in lines if li.status in NEEDS_ANSWER}
    waiting = sorted(needed - set(answers))
    if waiting:
        inbound.result = {"wartet_auf": waiting}
        inbound.save()
        return "neu"
    entries = {p: a for p, a in answers.items() if p in in_bundle}
    try:
        response = record_response(anfrage.id, entries, actor="link", now=now, source="link")
    except OperationError as error:
        for click in clicks:
            _finish(click, "pruefung", now, reason=f"{error.code}: {error.message}")
        return "pruefung"
    result = {"response": response.as_dict(), "clicks": [c.id for c in clicks]}
    for click in clicks:
        _finish(click if click.id != inbound.id else inbound, "verarbeitet", now, result=result)
    return "verarbeitet"


# --- review queue -----------------------------------------------------------------------------


def _review_item(inbound_id: int) -> InboundMessage:
    inbound = locked(InboundMessage.select().where(InboundMessage.id == inbound_id)).first()
    if inbound is None:
        raise OperationError("NOT_FOUND", f"no inbound message {inbound_id}", status=404)
    if inbound.status not in ("pruefung", "neu", "fehler"):
        raise OperationError(
            "ALREADY_PROCESSED",
            f"inbound message {inbound_id} is {inbound.status} already",
            status=409,
        )
    return inbound


def decide_review(
    inbound_id: int,
    responses: dict,
    actor: str,
    *,
    anfrage_id: int | None = None,
    notizen: str | None = None,
    now: dt.datetime | None = None,
):
    """Staff read a reply from the review queue and record its answer.

    ``anfrage_id`` is needed when the reply's Anfrage was not recognised. Raises the
    ``OperationError`` of ``record_response`` (nothing changed) when the answer is refused.
    """
    now = now or utcnow()
    with write_transaction():
        inbound = _review_item(inbound_id)
        target = anfrage_id or inbound.therapeutenanfrage_id
        if target is None:
            raise OperationError("ANFRAGE_REQUIRED", "name the Anfrage this reply answers")
        response = record_response(
            target, responses, notizen, actor=actor, now=now, source="email_review"
        )
        inbound.therapeutenanfrage = target
        result = {**(inbound.result or {}), "response": response.as_dict(), "decided_by": actor}
        _retire_clicks(target, now, "Anfrage per E-Mail beantwortet (Prüfung)")
        _finish(inbound, "verarbeitet", now, result=result)
        return response


def dismiss_review(inbound_id: int, actor: str, reason: str, *, now: dt.datetime | None = None):
    """Staff mark a reply in the review queue as needing no answer (``ignoriert``)."""
    now = now or utcnow()
    with write_transaction():
        inbound = _review_item(inbound_id)
        _finish(inbound, "ignoriert", now, reason=reason)
        audit.record(actor, "dismiss_reply", "inbound_message", inbound.id, reason=reason, at=now)
        return inbound
