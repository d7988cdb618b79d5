"""0008 replay markers and link clicks in tables of their own; replies stored decoded.

Until 0007, ``inbound_messages`` held two kinds of rows that were no replies:

* Mailgun's single-use tokens, ``provider = 'mailgun-token'``, ``message_key =
  'mailgun-token:<sha256 of the token>'``, the message key they came with in
  ``raw_payload``. They move to ``webhook_replay_marker`` (provider ``mailgun``, the hash
  as ``token``, ``received_at`` as ``seen_at``).
* confirmed one-click links, ``provider = 'link'``, ``message_key = 'link:<anfrage>:<patient>'``,
  the JSON ``{"anfrage_id", "patient_id", "answer", "token", "remote_addr"}`` in
  ``raw_payload``. They move to ``link_klick`` with their status, result, review reason and
  times; the address is encrypted (db/crypto.py). The link token itself is not kept: no
  code read it, and it is a credential. A click whose Anfrage or patient no longer exists
  cannot be recorded any more and is dropped.

And ``inbound_messages.message`` is added: the reply decoded into the provider-neutral form
(the JSON object of ``psymatch.domain.reply_parse.Message``'s fields) that the webhook now
stores with every delivery. The upgrade decodes the stored rows once, with the frozen
reader of the pre-0008 storage format below (Mailgun: the form fields as JSON; Postmark:
the JSON body; raw: ``{"rfc822": text}`` or ``{"rfc822_base64": ...}``). It is a copy of
history on purpose: a migration must not change when the live decoder
(``webhooks/providers.py``, which the db floor cannot import) does. A row it cannot read
keeps ``message`` NULL, with the reason in ``review_reason`` if it is still ``neu``
(processing then marks it ``fehler``, as it did before).

Downgrade moves clicks and markers back into ``inbound_messages`` (the clicks without
their token, with the address decrypted) and drops ``message`` (``raw_payload`` was kept).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from email.utils import getaddresses

from db import crypto

CREATE = {
    "sqlite": [
        'CREATE TABLE "webhook_replay_marker" ("id" INTEGER NOT NULL PRIMARY KEY, '
        '"provider" VARCHAR(20) NOT NULL, "token" VARCHAR(64) NOT NULL, '
        '"message_key" VARCHAR(300) NOT NULL, "seen_at" DATETIME NOT NULL)',
        'CREATE TABLE "link_klick" ("id" INTEGER NOT NULL PRIMARY KEY, '
        '"therapeutenanfrage_id" INTEGER NOT NULL, "patient_id" INTEGER NOT NULL, '
        "\"answer\" VARCHAR(24) NOT NULL CHECK (answer IN ('angenommen', "
        "'abgelehnt_Kapazitaet', 'abgelehnt_nicht_geeignet', 'abgelehnt_sonstiges')), "
        '"clicked_at" DATETIME NOT NULL, "remote_addr" TEXT, '
        "\"status\" VARCHAR(11) NOT NULL CHECK (status IN ('neu', 'verarbeitet', 'pruefung', "
        "'ignoriert', 'fehler')), \"result\" TEXT, \"review_reason\" TEXT, "
        '"processed_at" DATETIME, '
        'FOREIGN KEY ("therapeutenanfrage_id") REFERENCES "therapeutenanfrage" ("id") '
        "ON DELETE CASCADE, "
        'FOREIGN KEY ("patient_id") REFERENCES "patienten" ("id") ON DELETE CASCADE)',
    ],
    "postgres": [
        'CREATE TABLE "webhook_replay_marker" ("id" SERIAL NOT NULL PRIMARY KEY, '
        '"provider" VARCHAR(20) NOT NULL, "token" VARCHAR(64) NOT NULL, '
        '"message_key" VARCHAR(300) NOT NULL, "seen_at" TIMESTAMP NOT NULL)',
        'CREATE TABLE "link_klick" ("id" SERIAL NOT NULL PRIMARY KEY, '
        '"therapeutenanfrage_id" INTEGER NOT NULL, "patient_id" INTEGER NOT NULL, '
        "\"answer\" VARCHAR(24) NOT NULL CHECK (answer IN ('angenommen', "
        "'abgelehnt_Kapazitaet', 'abgelehnt_nicht_geeignet', 'abgelehnt_sonstiges')), "
        '"clicked_at" TIMESTAMP NOT NULL, "remote_addr" TEXT, '
        "\"status\" VARCHAR(11) NOT NULL CHECK (status IN ('neu', 'verarbeitet', 'pruefung', "
        "'ignoriert', 'fehler')), \"result\" JSONB, \"review_reason\" TEXT, "
        '"processed_at" TIMESTAMP, '
        'FOREIGN KEY ("therapeutenanfrage_id") REFERENCES "therapeutenanfrage" ("id") '
        "ON DELETE CASCADE, "
        'FOREIGN KEY ("patient_id") REFERENCES "patienten" ("id") ON DELETE CASCADE)',
    ],
}
INDEXES = [
    'CREATE UNIQUE INDEX "webhook_replay_marker_provider_token" '
    'ON "webhook_replay_marker" ("provider", "token")',
    'CREATE INDEX "webhook_replay_marker_seen_at" ON "webhook_replay_marker" ("seen_at")',
    'CREATE INDEX "link_klick_patient_id" ON "link_klick" ("patient_id")',
    'CREATE UNIQUE INDEX "link_klick_therapeutenanfrage_id_patient_id" '
    'ON "link_klick" ("therapeutenanfrage_id", "patient_id")',
]
ADD_MESSAGE = 'ALTER TABLE "inbound_messages" ADD COLUMN "message" TEXT'

MARKER = "mailgun-token"
MARKER_PREFIX = f"{MARKER}:"
MARKER_REASON = "Mailgun-Token (Schutz vor Wiederholung)"
MOVE_MARKERS = (
    'INSERT INTO "webhook_replay_marker" ("provider", "token", "message_key", "seen_at") '
    f'SELECT \'mailgun\', SUBSTR("message_key", {len(MARKER_PREFIX) + 1}), "raw_payload", '
    f'"received_at" FROM "inbound_messages" WHERE "provider" = \'{MARKER}\''
)
DROP_OLD_MARKERS = f'DELETE FROM "inbound_messages" WHERE "provider" = \'{MARKER}\''
MARKERS_BACK = (
    'INSERT INTO "inbound_messages" ("provider", "message_key", "received_at", "raw_payload", '
    '"status", "processed_at", "review_reason") '
    f'SELECT \'{MARKER}\', \'{MARKER_PREFIX}\' || "token", "seen_at", "message_key", '
    f"'ignoriert', \"seen_at\", '{MARKER_REASON}' FROM \"webhook_replay_marker\""
)


def _json_param(database, dialect: str) -> str:
    return f"CAST({database.param} AS JSONB)" if dialect == "postgres" else database.param


def _json_text(value) -> str | None:
    """A JSON column's value as read raw (text on SQLite, decoded on PostgreSQL) as text."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _move_clicks(database, dialect: str) -> None:
    p = database.param
    rows = database.execute_sql(
        'SELECT "id", "raw_payload", "received_at", "status", "result", "review_reason", '
        '"processed_at" FROM "inbound_messages" WHERE "provider" = \'link\' ORDER BY "id"'
    ).fetchall()
    anfragen = {r for (r,) in database.execute_sql('SELECT "id" FROM "therapeutenanfrage"')}
    patients = {r for (r,) in database.execute_sql('SELECT "id" FROM "patienten"')}
    insert = (
        'INSERT INTO "link_klick" ("therapeutenanfrage_id", "patient_id", "answer", '
        '"clicked_at", "remote_addr", "status", "result", "review_reason", "processed_at") '
        f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {_json_param(database, dialect)}, {p}, {p})"
    )
    seen = set()
    for _, payload, received, status, result, reason, processed in rows:
        claim = json.loads(payload)
        key = (claim["anfrage_id"], claim["patient_id"])
        if key[0] not in anfragen or key[1] not in patients or key in seen:
            continue  # the Anfrage or patient is gone: nothing a click could record
        seen.add(key)
        address = claim.get("remote_addr")
        database.execute_sql(
            insert,
            (
                *key,
                claim["answer"],
                received,
                None if address is None else crypto.encrypt(address),
                status,
                _json_text(result),
                reason,
                processed,
            ),
        )
    database.execute_sql('DELETE FROM "inbound_messages" WHERE "provider" = \'link\'')


def _clicks_back(database, dialect: str) -> None:
    p = database.param
    rows = database.execute_sql(
        'SELECT "therapeutenanfrage_id", "patient_id", "answer", "clicked_at", "remote_addr", '
        '"status", "result", "review_reason", "processed_at" FROM "link_klick" ORDER BY "id"'
    ).fetchall()
    insert = (
        'INSERT INTO "inbound_messages" ("provider", "message_key", "received_at", '
        '"raw_payload", "subject", "therapeutenanfrage_id", "status", "result", '
        '"review_reason", "processed_at") '
        f"VALUES ('link', {p}, {p}, {p}, {p}, {p}, {p}, {_json_param(database, dialect)}, {p}, {p})"
    )
    for anfrage, patient, answer, clicked, address, status, result, reason, processed in rows:
        payload = {
            "anfrage_id": anfrage,
            "patient_id": patient,
            "answer": answer,
            "remote_addr": None if address is None else crypto.decrypt(address),
        }
        database.execute_sql(
            insert,
            (
                f"link:{anfrage}:{patient}",
                clicked,
                json.dumps(payload),
                f"Klick A{anfrage} Patient {patient}",
                anfrage,
                status,
                _json_text(result),
                reason,
                processed,
            ),
        )


# --- the frozen reader of the pre-0008 storage format ---------------------------------------


def _split_ids(value) -> list[str]:
    return [part for part in str(value).replace(",", " ").split() if part] if value else []


def _addresses(*values) -> list[str]:
    return [a for _, a in getaddresses([v for v in values if isinstance(v, str) and v]) if a]


def _header(pairs, name: str):
    return next((v for k, v in pairs if k.lower() == name.lower()), None)


def _first_wins(pairs) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        if name.lower() not in {k.lower() for k in out}:
            out[name] = value
    return out


def legacy_message(provider: str, raw_payload: str):
    """The ``reply_parse.Message`` of a row stored before 0008."""
    from psymatch.domain import reply_parse as parse

    data = json.loads(raw_payload)
    if provider == "raw":
        raw = (
            data["rfc822"].encode("utf-8")
            if "rfc822" in data
            else base64.b64decode(data["rfc822_base64"])
        )
        return parse.message_from_bytes(raw)
    if provider == "mailgun":
        pairs = [(str(n), str(v)) for n, v in json.loads(data.get("message-headers") or "[]")]
        return parse.message_from_parts(
            subject=data.get("subject") or _header(pairs, "Subject") or "",
            sender=data.get("from") or data.get("sender") or "",
            recipients=_addresses(
                data.get("recipient"), _header(pairs, "To"), _header(pairs, "Cc")
            ),
            text=data.get("body-plain") or data.get("stripped-text"),
            html=data.get("body-html"),
            headers=_first_wins(pairs),
            message_id=data.get("Message-Id") or _header(pairs, "Message-Id"),
            in_reply_to=_split_ids(data.get("In-Reply-To") or _header(pairs, "In-Reply-To")),
            references=_split_ids(data.get("References") or _header(pairs, "References")),
        )
    if provider == "postmark":
        pairs = [(str(h["Name"]), str(h["Value"])) for h in data.get("Headers") or []]
        full = [
            item.get("Email")
            for key in ("ToFull", "CcFull")
            for item in data.get(key) or []
            if isinstance(item, dict) and item.get("Email")
        ]
        recipients = _addresses(data.get("To"), data.get("Cc"), data.get("OriginalRecipient"))
        return parse.message_from_parts(
            subject=data.get("Subject") or "",
            sender=data.get("From") or "",
            recipients=list(dict.fromkeys(recipients + full)),
            text=data.get("TextBody") or data.get("StrippedTextReply"),
            html=data.get("HtmlBody"),
            headers=_first_wins(pairs),
            message_id=_header(pairs, "Message-ID") or data.get("MessageID"),
            in_reply_to=_split_ids(_header(pairs, "In-Reply-To")),
            references=_split_ids(_header(pairs, "References")),
        )
    raise ValueError(f"no message for provider {provider!r}")


def _decode_stored(database) -> None:
    p = database.param
    rows = database.execute_sql(
        'SELECT "id", "provider", "raw_payload", "status" FROM "inbound_messages" '
        'WHERE "message" IS NULL ORDER BY "id"'
    ).fetchall()
    for row_id, provider, raw_payload, status in rows:
        try:
            message = legacy_message(provider, raw_payload)
        except Exception as exc:  # unreadable before as well: processing says "fehler"
            if status == "neu":
                database.execute_sql(
                    f'UPDATE "inbound_messages" SET "review_reason" = {p} WHERE "id" = {p}',
                    (f"Nachricht nicht lesbar: {exc!r}"[:2000], row_id),
                )
            continue
        text = json.dumps(dataclasses.asdict(message), ensure_ascii=False)
        text = text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
        database.execute_sql(
            f'UPDATE "inbound_messages" SET "message" = {p} WHERE "id" = {p}', (text, row_id)
        )


def up(database, dialect) -> None:
    database.execute_sql(MOVE_MARKERS)
    database.execute_sql(DROP_OLD_MARKERS)
    _move_clicks(database, dialect)
    _decode_stored(database)


def down(database, dialect) -> None:
    database.execute_sql(MARKERS_BACK)
    _clicks_back(database, dialect)
    database.execute_sql('ALTER TABLE "inbound_messages" DROP COLUMN "message"')
    database.execute_sql('DROP TABLE "link_klick"')
    database.execute_sql('DROP TABLE "webhook_replay_marker"')


VERSION = 8
NAME = "replay_markers_link_klicks"
UP = {
    "sqlite": [*CREATE["sqlite"], *INDEXES, ADD_MESSAGE],
    "postgres": [*CREATE["postgres"], *INDEXES, ADD_MESSAGE],
}
# everything happens in ``down``: the rows move back before their tables are dropped
DOWN = {"sqlite": [], "postgres": []}
