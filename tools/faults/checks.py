"""What is counted after a fault and its recovery.

Emails: the messages the SMTP server accepted, per Anfrage (subject ``Ref: A<id>``) and
kind; every practice has exactly one Anfrage and every Anfrage exactly one inquiry.
Replies: per expected reply (its Message-ID) one stored inbound row, processed
(``verarbeitet``), and exactly one ``record_response`` on its Anfrage.
Half-written rows: Anfragen without patients, unsent Anfragen, emails not ``Gesendet``,
inbound rows neither processed nor in review, outbox work not done, answered Anfragen
with lines still ``anstehend``.
"""

from __future__ import annotations

from collections import Counter

from db.models import (
    AuditLog,
    Email,
    InboundMessage,
    OutboxItem,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)

from . import scenario


def email_counts(sink, therapists: int) -> dict:
    per_anfrage = {a: len(m) for a, m in scenario.inquiries(sink).items()}
    other = len(sink.received()) - sum(per_anfrage.values())
    per_therapist = Counter(
        t for (t,) in Therapeutenanfrage.select(Therapeutenanfrage.therapist).tuples()
    )
    anfrage_ids = [a for (a,) in Therapeutenanfrage.select(Therapeutenanfrage.id).tuples()]
    lost = sum(1 for a in anfrage_ids if per_anfrage.get(a, 0) == 0)
    lost += max(0, therapists - len(per_therapist))  # a practice the round never reached
    duplicated = sum(n - 1 for n in per_anfrage.values() if n > 1)
    duplicated += sum(n - 1 for n in per_therapist.values() if n > 1)
    duplicated += other  # any second kind of email would be one this flow never causes
    return {
        "emails_expected": therapists,
        "emails_sent": sum(per_anfrage.values()) + other,
        "lost": lost,
        "duplicated": duplicated,
    }


def reply_counts(keys: list[str]) -> dict:
    recorded = lost = duplicated = 0
    for key in keys:
        rows = list(InboundMessage.select().where(InboundMessage.message_key == key))
        duplicated += max(0, len(rows) - 1)
        row = rows[0] if rows else None
        if row is None or row.status != "verarbeitet" or row.therapeutenanfrage_id is None:
            lost += 1
            continue
        answers = (
            AuditLog.select()
            .where(
                (AuditLog.action == "record_response")
                & (AuditLog.entity == "therapeutenanfrage")
                & (AuditLog.entity_id == str(row.therapeutenanfrage_id))
            )
            .count()
        )
        if answers == 0:
            lost += 1
            continue
        recorded += 1
        duplicated += answers - 1
    return {
        "replies_expected": len(keys),
        "replies_recorded": recorded,
        "lost": lost,
        "duplicated": duplicated,
    }


def half_written() -> dict[str, int]:
    with_lines = TherapeutAnfragePatient.select(TherapeutAnfragePatient.therapeutenanfrage)
    answered = Therapeutenanfrage.select(Therapeutenanfrage.id).where(
        Therapeutenanfrage.antwort_datum.is_null(False)
    )
    return {
        "anfragen_without_patients": Therapeutenanfrage.select()
        .where(Therapeutenanfrage.id.not_in(with_lines))
        .count(),
        "anfragen_unsent": Therapeutenanfrage.select()
        .where(Therapeutenanfrage.gesendet_datum.is_null() | Therapeutenanfrage.email.is_null())
        .count(),
        "emails_not_sent": Email.select().where(Email.status != "Gesendet").count(),
        "inbound_unsettled": InboundMessage.select()
        .where(InboundMessage.status.not_in(("verarbeitet", "pruefung", "ignoriert")))
        .count(),
        "outbox_not_done": OutboxItem.select().where(OutboxItem.status != "erledigt").count(),
        "answered_lines_pending": TherapeutAnfragePatient.select()
        .where(
            TherapeutAnfragePatient.therapeutenanfrage.in_(answered)
            & (TherapeutAnfragePatient.status == "anstehend")
        )
        .count(),
        "practices_without_cooling": Therapist.select()
        .where(
            Therapist.id.in_(
                Therapeutenanfrage.select(Therapeutenanfrage.therapist).where(
                    Therapeutenanfrage.id.in_(answered)
                )
            )
            & Therapist.naechster_kontakt_moeglich.is_null()
        )
        .count(),
    }


def row(name: str, sink, therapists: int, reply_keys: list[str]) -> dict:
    """One line of the table: the contract's keys, then the evidence."""
    emails = email_counts(sink, therapists)
    replies = reply_counts(reply_keys)
    half = half_written()
    return {
        "fault": name,
        "emails_expected": emails["emails_expected"],
        "emails_sent": emails["emails_sent"],
        "replies_expected": replies["replies_expected"],
        "replies_recorded": replies["replies_recorded"],
        "lost": emails["lost"] + replies["lost"],
        "duplicated": emails["duplicated"] + replies["duplicated"],
        "half_written": sum(half.values()),
        "half_written_by_kind": {k: v for k, v in half.items() if v},
    }


def passed(result: dict) -> bool:
    return (
        result["lost"] == 0
        and result["duplicated"] == 0
        and result["half_written"] == 0
        and result["emails_sent"] == result["emails_expected"]
        and result["replies_recorded"] == result["replies_expected"]
    )
