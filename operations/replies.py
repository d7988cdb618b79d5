"""Operations on inbound replies and link clicks: store, process, decide from review.

Each function is one transaction (``write_transaction``); nested operations such as
``record_response`` run inside it as a savepoint, so the reply's status and the recorded
answer commit together or not at all.

``store_inbound``
    Stores an email reply, already decoded by the webhook into the provider-neutral
    ``reply_parse.Message`` (nothing here knows a provider's format), keyed by
    ``message_key``: a second delivery of the same message finds the row and changes
    nothing. In the same transaction: the ``process_reply`` outbox item that makes a
    worker process it (architecture.md 3) and, for providers with single-use tokens
    (Mailgun), the token's ``WebhookReplayMarker``: a token seen with another message is a
    replay and refused (``TokenReused``, nothing stored). One peewee path on SQLite and
    PostgreSQL; races are decided by the unique keys (``INSERT ... ON CONFLICT DO
    NOTHING``, then a look at the row that won).
``store_click``
    Stores a confirmed one-click link (``LinkKlick``, one per Anfrage and patient) with
    its ``process_link_klick`` outbox item.
``process_inbound`` / ``process_click``
    Idempotent: a reply or click whose status is no longer ``neu`` is left alone. Email
    replies: auto-reply -> ``ignoriert``; Anfrage not identified -> ``pruefung``;
    otherwise the reply is understood (``psymatch.domain.reply_parse``). It is recorded
    automatically (``record_response(source="email", sender=...)`` -> ``verarbeitet``)
    only when it names its Anfrage with proof (the signed reply address or a signed
    Message-ID of ours: ``Ref: A2`` in the subject or an unsigned Message-ID is guessable),
    its From address belongs to the Anfrage's practice (``operations/senders.py``) and
    the answer is unambiguous; anything else -> ``pruefung`` with the reason. The From
    address is stored as ``sender`` and named in the audit row. Clicks are collected per
    Anfrage until every pending patient has one, then recorded together (see ``webhooks/links.py``).
``decide_review`` / ``dismiss_review``
    Staff resolve a reply in the review queue: record the answer they read, or ignore it.
``decide_click_review`` / ``dismiss_click_review``
    The same for a link click in ``pruefung`` (Anfrage answered otherwise already, answer
    refused by ``record_response``, ...): record the Anfrage's answer, or ignore the click.

``InboundMessage.message`` holds the decoded reply as JSON (``message_json``; read back by
``stored_message``); ``raw_payload`` keeps the delivery as posted, for audit only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from peewee import SQL, fn

from db.database import locked, write_transaction
from db.models import (
    InboundMessage,
    LinkKlick,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
    WebhookReplayMarker,
    utcnow,
)
from db.statements import Prepared
from operations import audit, auto_replies, notes, outbox
from operations.errors import OperationError
from operations.responses import record_response
from operations.senders import practice_addresses, sender_address
from psymatch.domain import auto_replies as auto_reply_rules
from psymatch.domain import reply_parse

TASK = "process_reply"
KLICK_TASK = "process_link_klick"
NEEDS_ANSWER = ("anstehend", "keine_antwort")
UNREADABLE = "Nachricht nicht lesbar"


class TokenReused(OperationError):
    """A single-use webhook token that came before with another message: a replay."""

    def __init__(self):
        super().__init__("TOKEN_REUSED", "this token was used for another message", status=406)


def dedupe_key(inbound_id: int) -> str:
    return outbox.key(TASK, inbound_id)


def klick_key(klick_id: int) -> str:
    return outbox.key(KLICK_TASK, klick_id)


# --- the stored form of a reply ------------------------------------------------------------


def message_json(message: reply_parse.Message) -> str:
    """The provider-neutral form as stored in ``InboundMessage.message``."""
    text = json.dumps(dataclasses.asdict(message), ensure_ascii=False)
    return text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates


def stored_message(inbound: InboundMessage) -> reply_parse.Message | None:
    """The decoded reply of a stored row (None: the webhook could not decode it)."""
    if inbound.message is None:
        return None
    return reply_parse.Message(**json.loads(inbound.message))


# --- store -------------------------------------------------------------------------------


def _inserted_id(query) -> int | None:
    """The id an ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` wrote, else None."""
    rows = list(
        query.on_conflict_ignore().returning(query.model._meta.primary_key).tuples().execute()
    )
    return rows[0][0] if rows else None


def _claim_token(replay: tuple[str, str], message_key: str, now) -> None:
    """Remember the token with this message, or refuse it when it came with another one.

    A concurrent delivery with the same token waits on the unique key until the first
    commits; the look afterwards (a new statement) sees the row that won."""
    provider, token = replay
    query = WebhookReplayMarker.insert(
        provider=provider, token=token, message_key=message_key, seen_at=now
    )
    if _inserted_id(query) is not None:
        return
    seen = (
        WebhookReplayMarker.select(WebhookReplayMarker.message_key)
        .where((WebhookReplayMarker.provider == provider) & (WebhookReplayMarker.token == token))
        .scalar()
    )
    if seen != message_key:
        raise TokenReused()


def _redelivered(message_key: str, replay: tuple[str, str] | None) -> int | None:
    """The id of a stored message whose token (if any) is remembered with it already: a
    redelivery that would write nothing. (Half the deliveries are such repeats; on SQLite
    they then do not queue for the one write lock.)"""
    query = InboundMessage.select(InboundMessage.id).where(
        InboundMessage.message_key == message_key
    )
    if replay is not None:
        provider, token = replay
        marker = WebhookReplayMarker.select(SQL("1")).where(
            (WebhookReplayMarker.provider == provider)
            & (WebhookReplayMarker.token == token)
            & (WebhookReplayMarker.message_key == message_key)
        )
        query = query.where(fn.EXISTS(marker))
    return query.scalar()


def store_inbound(
    provider: str,
    message_key: str,
    raw_payload: str,
    sender: str | None,
    recipient: str | None,
    subject: str | None,
    *,
    message: reply_parse.Message | None,
    unreadable: str | None = None,
    replay: tuple[str, str] | None = None,
    anfrage_id: int | None = None,
    now: dt.datetime | None = None,
) -> tuple[InboundMessage, bool]:
    """Store a delivery once; returns ``(row, created)``.

    ``message`` is the decoded reply (None when it could not be decoded: ``unreadable``
    says why, and processing marks the reply ``fehler``). ``replay`` is ``(provider,
    token hash)`` of a single-use token (``TokenReused`` when it came with another
    message: nothing is written). A new row gets its ``process_reply`` outbox item in the
    same transaction; a duplicate (same ``message_key``) writes nothing and its row holds
    only ``id`` and ``message_key``.
    """
    now = now or utcnow()
    values = {
        "provider": provider,
        "message_key": message_key,
        "received_at": now,
        "raw_payload": raw_payload,
        "message": None if message is None else message_json(message),
        "sender": sender,
        "recipient": recipient,
        "subject": subject,
        "therapeutenanfrage": anfrage_id,
        "status": "neu",
        "review_reason": None if message is not None else f"{UNREADABLE}: {unreadable}"[:2000],
    }
    known = _redelivered(message_key, replay)
    if known is not None:  # nothing to write: answered by a read, without the write lock
        return InboundMessage(id=known, message_key=message_key), False
    with write_transaction():
        if replay is not None:
            _claim_token(replay, message_key, now)
        new_id = _inserted_id(InboundMessage.insert(**values))
        if new_id is not None:
            outbox.put(TASK, {"inbound_id": new_id}, dedupe_key(new_id), now=now)
            return InboundMessage(id=new_id, **values), True
        existing = (
            InboundMessage.select(InboundMessage.id)
            .where(InboundMessage.message_key == message_key)
            .scalar()
        )
        return InboundMessage(id=existing, message_key=message_key), False


def store_delivery(delivery, *, replay: tuple[str, str] | None = None, now=None):
    """``store_inbound`` for a decoded delivery (``webhooks.providers.Normalised``: the
    webhook and the simulator hand over the same fields); returns ``(row, created)``."""
    return store_inbound(
        delivery.provider,
        delivery.message_key,
        delivery.raw_payload,
        delivery.sender,
        delivery.recipient,
        delivery.subject,
        message=delivery.message,
        unreadable=delivery.unreadable,
        replay=replay,
        now=now,
    )


def forget_replay_markers(before: dt.datetime) -> int:
    """Delete token markers seen before ``before`` (their timestamps are stale by then, so
    the signature check refuses such a token anyway); returns how many."""
    return WebhookReplayMarker.delete().where(WebhookReplayMarker.seen_at < before).execute()


def store_click(
    anfrage_id: int,
    patient_id: int,
    answer: str,
    remote_addr: str | None,
    *,
    now: dt.datetime | None = None,
) -> tuple[LinkKlick, bool]:
    """Store a confirmed link click once per Anfrage and patient; returns ``(click,
    created)``. A second click (any answer) returns the first and writes nothing."""
    now = now or utcnow()
    with write_transaction():
        query = LinkKlick.insert(
            therapeutenanfrage=anfrage_id,
            patient=patient_id,
            answer=answer,
            clicked_at=now,
            remote_addr=remote_addr,
            status="neu",
        )
        new_id = _inserted_id(query)
        if new_id is not None:
            outbox.put(KLICK_TASK, {"klick_id": new_id}, klick_key(new_id), now=now)
        click = _CLICK.first(anfrage=anfrage_id, patient=patient_id)
        return click, new_id is not None


def noted_click(anfrage_id: int, patient_id: int) -> LinkKlick | None:
    return LinkKlick.get_or_none(
        (LinkKlick.therapeutenanfrage == anfrage_id) & (LinkKlick.patient == patient_id)
    )


# a click row exists once its INSERT OR IGNORE ran (one per Anfrage and patient)
_CLICK = Prepared(
    lambda p: (
        LinkKlick.select()
        .where((LinkKlick.therapeutenanfrage == p.anfrage) & (LinkKlick.patient == p.patient))
        .limit(1)
    )
)


def waiting_clicks(anfrage_id: int):
    """The clicks of an Anfrage still waiting for the rest of its patients."""
    return LinkKlick.select().where(
        (LinkKlick.therapeutenanfrage == anfrage_id) & (LinkKlick.status == "neu")
    )


# the same, locked, in id order: read whenever a click is processed
_WAITING_CLICKS = Prepared(lambda p: locked(waiting_clicks(p.anfrage)).order_by(LinkKlick.id))


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
    return TherapeutAnfragePatient.lines_of(anfrage_id)


def is_answered(anfrage: Therapeutenanfrage) -> bool:
    """Answered by the therapist (a closure without response still takes an answer)."""
    return anfrage.antwort_datum is not None and anfrage.antworttyp != "keine_Antwort"


def process_inbound(inbound_id: int, now: dt.datetime | None = None) -> str:
    """Process one stored email reply; returns its status afterwards."""
    now = now or utcnow()
    with write_transaction():
        inbound = InboundMessage.locked_by_id(inbound_id)
        if inbound is None:
            return "unbekannt"
        if inbound.status != "neu":
            return inbound.status
        return _process_email(inbound, now)


NOT_SIGNED = {
    reply_parse.VIA_SUBJECT: "Anfrage nur am Betreff erkannt, nicht signiert",
    reply_parse.VIA_UNSIGNED_MESSAGE_ID: (
        "Anfrage nur an einer unsignierten Message-ID erkannt, nicht signiert"
    ),
}


def _provenance_problem(ref: reply_parse.AnfrageRef, anfrage, sender: str | None) -> str | None:
    """Why the reply may not be recorded automatically, whatever it says (None: it may):
    it must name its Anfrage with a signature and come from the Anfrage's practice."""
    if not ref.signed:
        return NOT_SIGNED.get(ref.via, "Anfrage nicht signiert")
    therapist = Therapist.get_by_id(anfrage.therapist_id)
    if sender is None:
        return "Absender fehlt oder ist nicht eindeutig"
    if sender not in practice_addresses(therapist):
        return f"Absender {sender} gehört nicht zur Praxis von A{anfrage.id}"
    return None


def _process_email(inbound: InboundMessage, now) -> str:
    parse = reply_parse
    try:
        message = stored_message(inbound)
        if message is None:
            return _finish(inbound, "fehler", now, reason=inbound.review_reason or UNREADABLE)
        bounce = auto_reply_rules.bounce_of(message)
        auto = None if bounce else parse.is_auto_reply(message)
        ref = None if bounce else parse.locate_anfrage(message)
        sender = sender_address(message.sender) or sender_address(inbound.sender)
    except Exception as exc:  # an unreadable message is data, not a reason to retry
        return _finish(inbound, "fehler", now, reason=f"{UNREADABLE}: {exc!r}")
    if bounce is not None:
        status, reason, result = auto_replies.apply_bounce(bounce, now)
        named = auto_replies.anfragen_named(bounce)
        if named and Therapeutenanfrage.get_or_none(Therapeutenanfrage.id == named[0]):
            inbound.therapeutenanfrage = named[0]
        return _finish(inbound, status, now, reason=reason, result=result)
    if auto:
        return _absence(inbound, message, ref, auto, now)
    if sender is not None:
        inbound.sender = _safe(sender)[:254]
    anfrage = Therapeutenanfrage.by_id(ref.anfrage_id)
    if anfrage is None:
        return _finish(inbound, "pruefung", now, reason="Anfrage nicht erkannt")
    inbound.therapeutenanfrage = anfrage.id
    lines = _lines(anfrage.id)
    # after a partial answer (§0.14) the reply is about the patients still open
    rest = anfrage.antwort_datum is None and any(line.antwortergebnis for line in lines)
    if rest:
        lines = [line for line in lines if not line.antwortergebnis]
    try:
        decision = parse.understand(message, [line.patient_id for line in lines], rest=rest)
    except Exception as exc:
        return _finish(inbound, "fehler", now, reason=f"Antwort nicht auswertbar: {exc!r}")
    result = {"decision": _decision_dict(decision), "erkannt_ueber": ref.via, "absender": sender}
    problem = _provenance_problem(ref, anfrage, sender)
    if problem is not None:
        if decision.review:
            problem = f"{problem}; {decision.reason or 'Antwort nicht eindeutig'}"
        return _finish(inbound, "pruefung", now, reason=problem, result=result)
    if decision.review:
        reason = decision.reason or "Antwort nicht eindeutig"
        return _finish(inbound, "pruefung", now, reason=reason, result=result)
    try:
        response = record_response(
            anfrage.id,
            dict(decision.decisions),
            actor="email",
            now=now,
            source="email",
            sender=sender,
            partial=bool(getattr(decision, "pending", None)),
        )
    except OperationError as error:
        result["error"] = error.as_dict()
        reason = f"{error.code}: {error.message}"
        return _finish(inbound, "pruefung", now, reason=reason, result=result)
    result["response"] = response.as_dict()
    _note_logistics(anfrage.id, decision, inbound, now, result)
    _retire_clicks(anfrage.id, now, "Anfrage per E-Mail beantwortet")
    return _finish(inbound, "verarbeitet", now, result=result)


def _note_logistics(anfrage_id: int, decision, inbound: InboundMessage, now, result) -> None:
    """What the reply says besides the decision (phone window, proposed date, a question)
    goes into the Anfrage's notes; questions become open questions (``open_questions``)."""
    if not getattr(decision, "logistics", None):
        return
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    text = " / ".join(decision.logistics)
    anfrage.notizen = notes.append(
        anfrage.notizen, now, "email", f"Hinweis aus der Antwort: {_safe(text)[:1000]}"
    )
    anfrage.save()
    if decision.questions:
        result["offene_fragen"] = [_safe(q)[:500] for q in decision.questions]


def _absence(inbound: InboundMessage, message, ref, auto: str, now) -> str:
    """An automatic reply: an out-of-office note moves the follow-up of the Anfrage it
    answers (signed reference only: a subject is guessable); anything else is ignored."""
    day = auto_replies.reference_day(message, inbound.received_at or now)
    absence = auto_reply_rules.absence_of(message, day, auto)
    if absence is None:
        return _finish(inbound, "ignoriert", now, reason=f"Automatische Antwort: {auto}")
    anfrage = None
    if ref is not None and ref.signed:
        anfrage = Therapeutenanfrage.locked_by_id(ref.anfrage_id)
    if anfrage is not None:
        inbound.therapeutenanfrage = anfrage.id
    status, reason, result = auto_replies.apply_absence(anfrage, absence, now)
    return _finish(inbound, status, now, reason=reason, result=result)


def _retire_clicks(anfrage_id: int, now, reason: str) -> None:
    """Link clicks still waiting for the rest of the bundle are moot once it is answered."""
    LinkKlick.update(status="ignoriert", review_reason=reason, processed_at=now).where(
        (LinkKlick.therapeutenanfrage == anfrage_id) & (LinkKlick.status == "neu")
    ).execute()


def process_click(klick_id: int, now: dt.datetime | None = None) -> str:
    """Process one stored link click; returns its status afterwards (``neu``: it waits for
    the clicks of the Anfrage's other patients)."""
    now = now or utcnow()
    with write_transaction():
        click = LinkKlick.locked_by_id(klick_id)
        if click is None:
            return "unbekannt"
        if click.status != "neu":
            return click.status
        return _process_click(click, now)


def _process_click(click: LinkKlick, now) -> str:
    anfrage = Therapeutenanfrage.locked_by_id(click.therapeutenanfrage_id)
    if anfrage is None:
        return _finish(click, "pruefung", now, reason="Anfrage nicht gefunden")
    lines = _lines(anfrage.id)
    line = next((li for li in lines if li.patient_id == click.patient_id), None)
    if line is None:
        return _finish(click, "pruefung", now, reason="Patient nicht in dieser Anfrage")
    if is_answered(anfrage):
        if line.antwortergebnis == click.answer:
            return _finish(click, "ignoriert", now, reason="Anfrage bereits beantwortet")
        reason = (
            f"ALREADY_ANSWERED: A{anfrage.id} ist bereits beantwortet "
            f"(vermerkt: {line.antwortergebnis}, Klick: {click.answer})"
        )
        return _finish(click, "pruefung", now, reason=reason)
    clicks = _WAITING_CLICKS.rows(anfrage=anfrage.id)
    if click.id not in {c.id for c in clicks}:
        clicks.append(click)
    answers = {}
    for each in clicks:
        answers.setdefault(each.patient_id, each.answer)
    in_bundle = {li.patient_id for li in lines}
    needed = {li.patient_id for li in lines if li.status in NEEDS_ANSWER}
    waiting = sorted(needed - set(answers))
    if waiting:
        click.result = {"wartet_auf": waiting}
        click.save()
        return "neu"
    entries = {p: a for p, a in answers.items() if p in in_bundle}
    try:
        response = record_response(anfrage.id, entries, actor="link", now=now, source="link")
    except OperationError as error:
        for each in clicks:
            _finish(each, "pruefung", now, reason=f"{error.code}: {error.message}")
        return "pruefung"
    result = {"response": response.as_dict(), "clicks": [c.id for c in clicks]}
    for each in clicks:
        _finish(each if each.id != click.id else click, "verarbeitet", now, result=result)
    return "verarbeitet"


# --- review queue -----------------------------------------------------------------------------


def _under_review(model, row_id: int, what: str, open_statuses: tuple[str, ...]):
    """The locked row of a review-queue item, or the ``OperationError`` why it cannot be
    decided: ``NOT_FOUND``, ``ALREADY_PROCESSED`` (decided or dismissed before) or
    ``NOT_IN_REVIEW`` (still being processed)."""
    row = model.locked_by_id(row_id)
    if row is None:
        raise OperationError("NOT_FOUND", f"no {what} {row_id}", status=404)
    if row.status in open_statuses:
        return row
    if row.status in ("verarbeitet", "ignoriert"):
        raise OperationError(
            "ALREADY_PROCESSED", f"{what} {row_id} is {row.status} already", status=409
        )
    raise OperationError("NOT_IN_REVIEW", f"{what} {row_id} is {row.status}", status=409)


def _review_item(inbound_id: int) -> InboundMessage:
    return _under_review(
        InboundMessage, inbound_id, "inbound message", ("pruefung", "neu", "fehler")
    )


def _review_click(klick_id: int) -> LinkKlick:
    return _under_review(LinkKlick, klick_id, "link click", ("pruefung",))


def decide_review(
    inbound_id: int,
    responses: dict,
    actor: str,
    *,
    anfrage_id: int | None = None,
    notizen: str | None = None,
    now: dt.datetime | None = None,
    partial: bool = False,
):
    """Staff read a reply from the review queue and record its answer.

    ``anfrage_id`` is needed when the reply's Anfrage was not recognised. ``partial``:
    staff decide some patients and leave the others open ("1 ja, bei den anderen
    unsicher"): the decided ones are recorded, and the reply stays in the queue until no
    patient of its Anfrage is open. Raises the ``OperationError`` of ``record_response``
    (nothing changed) when the answer is refused.
    """
    now = now or utcnow()
    with write_transaction():
        inbound = _review_item(inbound_id)
        target = anfrage_id or inbound.therapeutenanfrage_id
        if target is None:
            raise OperationError("ANFRAGE_REQUIRED", "name the Anfrage this reply answers")
        response = record_response(
            target,
            responses,
            notizen,
            actor=actor,
            now=now,
            source="email_review",
            sender=inbound.sender,
            partial=partial,
        )
        inbound.therapeutenanfrage = target
        earlier = (inbound.result or {}).get("partial_decisions", [])
        if response.still_open:
            decision = {"response": response.as_dict(), "decided_by": actor}
            inbound.result = {**(inbound.result or {}), "partial_decisions": [*earlier, decision]}
            inbound.save()
            return response
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


def decide_click_review(
    klick_id: int,
    responses: dict,
    actor: str,
    *,
    notizen: str | None = None,
    now: dt.datetime | None = None,
):
    """Staff resolve a link click in the review queue by recording the answer of its Anfrage.

    ``responses`` is the whole answer (every pending patient, as for ``record_response``),
    not only the clicked one. The click becomes ``verarbeitet`` with the decision in its
    result; the Anfrage's other clicks still waiting or in review are moot then
    (``ignoriert``). Raises the ``OperationError`` of ``record_response`` (nothing changed)
    when the answer is refused, ``ALREADY_PROCESSED`` for a click decided or dismissed before.
    """
    now = now or utcnow()
    with write_transaction():
        click = _review_click(klick_id)
        anfrage_id = click.therapeutenanfrage_id
        response = record_response(
            anfrage_id, responses, notizen, actor=actor, now=now, source="link_review"
        )
        result = {**(click.result or {}), "response": response.as_dict(), "decided_by": actor}
        _finish(click, "verarbeitet", now, result=result)
        others = [
            c.id
            for c in LinkKlick.select(LinkKlick.id).where(
                (LinkKlick.therapeutenanfrage == anfrage_id)
                & LinkKlick.status.in_(("neu", "pruefung"))
            )
        ]
        if others:
            reason = f"Anfrage in der Prüfung beantwortet (Klick {click.id})"
            LinkKlick.update(status="ignoriert", review_reason=reason, processed_at=now).where(
                LinkKlick.id.in_(others)
            ).execute()
        audit.record(
            actor,
            "decide_link_klick",
            "link_klick",
            click.id,
            {
                "anfrage_id": anfrage_id,
                "patient_id": click.patient_id,
                "clicked": click.answer,
                "antworttyp": response.antworttyp,
                "retired_klicks": others,
            },
            at=now,
        )
        return response


def dismiss_click_review(klick_id: int, actor: str, reason: str, *, now: dt.datetime | None = None):
    """Staff mark a link click in the review queue as needing no answer (``ignoriert``)."""
    if not (reason or "").strip():
        raise OperationError("REASON_REQUIRED", "give a reason to dismiss a link click")
    now = now or utcnow()
    with write_transaction():
        click = _review_click(klick_id)
        _finish(click, "ignoriert", now, reason=reason.strip())
        audit.record(
            actor,
            "dismiss_link_klick",
            "link_klick",
            click.id,
            {"anfrage_id": click.therapeutenanfrage_id, "clicked": click.answer},
            reason=reason.strip(),
            at=now,
        )
        return click


# --- open questions (issue 17.3) ---------------------------------------------------------------

OPEN_QUESTION_DAYS = 60  # how far back ``open_questions`` looks


def open_questions(now: dt.datetime | None = None, days: int = OPEN_QUESTION_DAYS) -> list[dict]:
    """Questions therapists asked beside a decision recorded automatically ("Wann können
    Sie anrufen?"), not yet marked done, newest last: rows with ``inbound_id``,
    ``anfrage_id``, ``therapist_id``, ``therapist`` (name), ``text`` and ``received_at``.
    For the staff's Today list; ``close_open_question`` marks one done."""
    now = now or utcnow()
    since = now - dt.timedelta(days=days)
    rows = (
        InboundMessage.select(InboundMessage, Therapeutenanfrage, Therapist)
        .join(Therapeutenanfrage)
        .join(Therapist)
        .where((InboundMessage.status == "verarbeitet") & (InboundMessage.received_at >= since))
        .order_by(InboundMessage.received_at, InboundMessage.id)
    )
    found = []
    for row in rows:
        result = row.result or {}
        if not result.get("offene_fragen") or result.get("frage_erledigt"):
            continue
        therapist = row.therapeutenanfrage.therapist
        found.append(
            {
                "inbound_id": row.id,
                "anfrage_id": row.therapeutenanfrage_id,
                "therapist_id": therapist.id,
                "therapist": " ".join(
                    p for p in (therapist.titel, therapist.vorname, therapist.nachname) if p
                ),
                "text": " / ".join(result["offene_fragen"]),
                "received_at": row.received_at,
            }
        )
    return found


def close_open_question(inbound_id: int, actor: str, *, now: dt.datetime | None = None) -> dict:
    """Staff answered a therapist's open question; it leaves ``open_questions``.
    ``NOT_FOUND`` (404) for an unknown reply or one without an open question,
    ``ALREADY_PROCESSED`` when it was marked done before; an audit row names ``actor``."""
    try:
        actor = audit.actor_name(actor)
    except ValueError as exc:
        raise OperationError("ACTOR_REQUIRED", str(exc)) from None
    now = now or utcnow()
    with write_transaction():
        row = InboundMessage.locked_by_id(inbound_id)
        result = (row.result or {}) if row is not None else {}
        if row is None or not result.get("offene_fragen"):
            raise OperationError("NOT_FOUND", f"no open question in reply {inbound_id}", status=404)
        if result.get("frage_erledigt"):
            raise OperationError(
                "ALREADY_PROCESSED", f"reply {inbound_id}: question done already", status=409
            )
        row.result = {**result, "frage_erledigt": {"by": actor, "at": now.isoformat()}}
        row.save()
        audit.record(
            actor,
            "close_open_question",
            "inbound_message",
            row.id,
            {"anfrage_id": row.therapeutenanfrage_id},
            at=now,
        )
        return {"inbound_id": row.id, "anfrage_id": row.therapeutenanfrage_id}
