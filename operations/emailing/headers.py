"""Idempotency keys, Message-IDs and reply headers of every kind of email.

All of them are derived from (kind, reference id) alone, so rendering and the
SMTP worker agree without storing headers, and a resend of the same email keeps
its Message-ID (recipients and the inbound webhook can recognise a duplicate):

============================  =====================  ===================================
kind (``Email.art``)          reference              Message-ID
============================  =====================  ===================================
``anfrage``                   Therapeutenanfrage id  ``<anfrage-42.anfrage.<mac>@REPLY_DOMAIN>``
``erinnerung``                Therapeutenanfrage id  ``<anfrage-42.erinnerung.<mac>@...>``
``annahme_bestaetigung``      Therapeutenanfrage id  ``<anfrage-42.annahme_bestaetigung.<mac>@...>``
``konflikt``                  Therapeutenanfrage id  ``<anfrage-42.konflikt.<mac>@...>``
``vermittlung``               Platzsuche id          ``<platzsuche-7.vermittlung@...>``
============================  =====================  ===================================

The idempotency key (``Email.idempotenz_schluessel``) is ``"<kind>:<reference>"``,
e.g. ``anfrage:42``; the outbox item that sends it uses ``send_email:<key>``.
The Message-IDs about an Anfrage are signed (``tokens.anfrage_message_id``): a
reply quoting one proves which Anfrage it answers.
Emails about an Anfrage that expect an answer carry its signed reply address as
``Reply-To``; follow-ups thread under the inquiry with In-Reply-To/References.
"""

from __future__ import annotations

from psymatch import settings
from psymatch.domain.tokens import anfrage_message_id, reply_address

ANFRAGE_KINDS = ("anfrage", "erinnerung", "annahme_bestaetigung", "konflikt")
REPLY_KINDS = ("anfrage", "erinnerung", "konflikt")
REFERENCE = {**{kind: "anfrage" for kind in ANFRAGE_KINDS}, "vermittlung": "platzsuche"}


def email_key(kind: str, reference_id: int) -> str:
    if kind not in REFERENCE:
        raise ValueError(f"unknown email kind {kind!r}")
    return f"{kind}:{int(reference_id)}"


def message_id(kind: str, reference_id: int) -> str:
    if kind not in REFERENCE:
        raise ValueError(f"unknown email kind {kind!r}")
    if kind in ANFRAGE_KINDS:
        return anfrage_message_id(kind, int(reference_id))
    domain = settings.get().REPLY_DOMAIN.lower()
    return f"<{REFERENCE[kind]}-{int(reference_id)}.{kind}@{domain}>"


def placement_key(
    suffix: str, platzsuche_id: int, therapist_id: int, number: int | None = None
) -> str:
    """Key of a placement email (``suffix`` ""), its reminder (``"erinnerung"``) or a meeting
    confirmation staff send (``"termin"``): one each per search and placed therapist,
    ``vermittlung:7.12`` / ``vermittlung_erinnerung:7.12`` / ``vermittlung_termin:7.12``.

    ``number``: the conflict reassignment (``KonfliktErledigung.umzuweisungen``) that placed
    the therapist, ``vermittlung:7.12.u3``. Staff may give a patient back and forth between
    two therapists; each reassignment is news for the patient, so each has its own email
    (while one reassignment still sends its email only once)."""
    kind = f"vermittlung_{suffix}" if suffix else "vermittlung"
    key = f"{kind}:{int(platzsuche_id)}.{int(therapist_id)}"
    return f"{key}.u{int(number)}" if number else key


def placement_message_id(
    suffix: str, platzsuche_id: int, therapist_id: int, number: int | None = None
) -> str:
    """``<platzsuche-7.t12.vermittlung@REPLY_DOMAIN>`` (``.erinnerung`` for the reminder;
    ``.vermittlung.u3`` for the email of reassignment 3, so no mail client takes it for a
    copy of an earlier one)."""
    domain = settings.get().REPLY_DOMAIN.lower()
    kind = suffix or "vermittlung"
    if number:
        kind = f"{kind}.u{int(number)}"
    return f"<platzsuche-{int(platzsuche_id)}.t{int(therapist_id)}.{kind}@{domain}>"


def outbox_key(key: str) -> str:
    return f"send_email:{key}"  # = operations.outbox.key("send_email", key)


def thread_headers(kind: str, anfrage_id: int | None) -> dict[str, str]:
    """Reply-To and threading headers for an email about ``anfrage_id`` (may be None)."""
    headers: dict[str, str] = {}
    if anfrage_id is None or kind not in ANFRAGE_KINDS:
        return headers
    if kind in REPLY_KINDS:
        headers["Reply-To"] = reply_address(anfrage_id)
    if kind != "anfrage":
        inquiry = message_id("anfrage", anfrage_id)
        headers["In-Reply-To"] = inquiry
        headers["References"] = inquiry
    return headers


def standard_headers(kind: str, reference_id: int) -> dict[str, str]:
    """Message-ID plus thread headers (for Anfrage kinds the reference is the Anfrage)."""
    anfrage_id = reference_id if kind in ANFRAGE_KINDS else None
    return {"Message-ID": message_id(kind, reference_id), **thread_headers(kind, anfrage_id)}
