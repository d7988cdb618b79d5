"""0010 sealed health data: symptoms, birth date, insurer, notes, replies and audit texts
encrypted at rest; patient coordinates kept to about 1 km; no patient address in the
geocoding cache.

Columns that from now on hold Fernet tokens (db/crypto.py; ``EncryptedTextField`` and its
date and JSON variants):

* ``patienten``: symptome, geburtsdatum, letzte_sitzung_vorherige_psychotherapie,
  krankenkasse, hausarzt, zahlungsreferenz, empfehler_der_unterstuetzung
* staff notes: ``therapeuten`` notizen, sperrgrund, potenziell_verfuegbar_notizen;
  ``platzsuche.notizen``, ``therapeutenanfrage.notizen``,
  ``therapeut_anfrage_patient.antwortnotizen``, ``telefonanrufe`` notizen and ergebnis
* ``inbound_messages``: raw_payload, message, sender, recipient, subject, result,
  review_reason
* ``audit_log``: details, reason

On PostgreSQL they become TEXT first (a token is longer than a VARCHAR limit, and is
neither a DATE nor JSON): a date as its ISO text (``to_char``, independent of DateStyle),
JSON as its text; ``symptome`` loses its DEFAULT '[]' (a plaintext default in an
encrypted column would be unreadable; every writer names the value). SQLite keeps its
declarations (it stores text in any column; the default of ``symptome`` stays, unused).
The data step then encrypts every stored value that is not a token yet, in batches by
id, so an interrupted or repeated run does nothing twice.

Also:

* every patient's ``latitude`` / ``longitude`` is rounded to two decimals (about 1 km;
  the model rounds every later write, ``db.models.RoundedDoubleField``);
* a ``geocache`` row looked up for a patient's street address (its ``query`` is the
  normalised address of a patient) gets the address replaced by its keyed hash
  (``crypto.blind_index``), loses the provider's display name and raw answer, and keeps
  coordinates rounded like the patient's (``operations/geocoding/nominatim.py`` writes
  patient lookups that way from now on).

Downgrade decrypts every value and restores the column types and the default. Lost for
good: the precision of the coordinates and the display names of patient lookups (the
hashed cache rows get their address back, from the patients).
"""

from __future__ import annotations

import datetime as dt
import json
import re

from db import crypto

TEXT, DATE, JSON = "text", "date", "json"
# table -> {column: (kind, PostgreSQL type before 0010)}
COLUMNS = {
    "patienten": {
        "hausarzt": (TEXT, "VARCHAR(200)"),
        "krankenkasse": (TEXT, "VARCHAR(100)"),
        "geburtsdatum": (DATE, "DATE"),
        "symptome": (JSON, "JSONB"),
        "letzte_sitzung_vorherige_psychotherapie": (DATE, "DATE"),
        "zahlungsreferenz": (TEXT, "VARCHAR(8)"),
        "empfehler_der_unterstuetzung": (TEXT, "TEXT"),
    },
    "therapeuten": {
        "potenziell_verfuegbar_notizen": (TEXT, "TEXT"),
        "sperrgrund": (TEXT, "TEXT"),
        "notizen": (TEXT, "TEXT"),
    },
    "platzsuche": {"notizen": (TEXT, "TEXT")},
    "therapeutenanfrage": {"notizen": (TEXT, "TEXT")},
    "therapeut_anfrage_patient": {"antwortnotizen": (TEXT, "TEXT")},
    "telefonanrufe": {"ergebnis": (TEXT, "TEXT"), "notizen": (TEXT, "TEXT")},
    "inbound_messages": {
        "raw_payload": (TEXT, "TEXT"),
        "message": (TEXT, "TEXT"),
        "sender": (TEXT, "VARCHAR(254)"),
        "recipient": (TEXT, "VARCHAR(500)"),
        "subject": (TEXT, "TEXT"),
        "result": (JSON, "JSONB"),
        "review_reason": (TEXT, "TEXT"),
    },
    "audit_log": {"details": (JSON, "JSONB"), "reason": (TEXT, "TEXT")},
}
BATCH = 2000


def _to_text(column: str, kind: str) -> str:
    if kind == DATE:
        return f"to_char(\"{column}\", 'YYYY-MM-DD')"
    return f'"{column}"::text'


def _alter_up() -> list[str]:
    statements = ['ALTER TABLE "patienten" ALTER COLUMN "symptome" DROP DEFAULT']
    for table, columns in COLUMNS.items():
        parts = [
            f'ALTER COLUMN "{c}" TYPE TEXT USING {_to_text(c, kind)}'
            for c, (kind, old) in columns.items()
            if old != "TEXT"
        ]
        if parts:
            statements.append(f'ALTER TABLE "{table}" ' + ", ".join(parts))
    return statements


def _alter_down() -> list[str]:
    statements = []
    for table, columns in COLUMNS.items():
        parts = [
            f'ALTER COLUMN "{c}" TYPE {old} USING "{c}"::{old.split("(")[0].lower()}'
            for c, (_, old) in columns.items()
            if old != "TEXT"
        ]
        if parts:
            statements.append(f'ALTER TABLE "{table}" ' + ", ".join(parts))
    statements.append("ALTER TABLE \"patienten\" ALTER COLUMN \"symptome\" SET DEFAULT '[]'")
    return statements


# --- values ------------------------------------------------------------------------------------


def _plaintext(kind: str, value) -> str:
    """A stored plaintext value as the text ``db.crypto``'s fields encrypt."""
    if kind == DATE:
        text = value.isoformat() if isinstance(value, dt.date) else str(value).strip()[:10]
        return dt.date.fromisoformat(text).isoformat()
    if kind == JSON:
        data = json.loads(value) if isinstance(value, str) else value
        return json.dumps(data, ensure_ascii=False)
    return str(value)


def _executemany(database, dialect: str, sql: str, rows: list) -> None:
    if not rows:
        return
    if dialect == "postgres":
        from psycopg2.extras import execute_batch

        execute_batch(database.cursor(), sql, rows, page_size=500)
    else:
        database.cursor().executemany(sql, rows)


def _transform(database, dialect: str, convert) -> None:
    """``convert(kind, value)`` -> new value or None (unchanged), for every stored value
    of every column, a batch of rows of one table at a time."""
    p = database.param
    for table, columns in COLUMNS.items():
        names = list(columns)
        selected = ", ".join(f'"{c}"' for c in names)
        last_id = 0
        while True:
            rows = database.execute_sql(
                f'SELECT "id", {selected} FROM "{table}" WHERE "id" > {p} '
                f'ORDER BY "id" LIMIT {BATCH}',
                (last_id,),
            ).fetchall()
            if not rows:
                break
            last_id = rows[-1][0]
            updates: dict[str, list] = {c: [] for c in names}
            for row_id, *values in rows:
                for column, value in zip(names, values, strict=True):
                    if value is None:
                        continue
                    new = convert(columns[column][0], value)
                    if new is not None:
                        updates[column].append((new, row_id))
            for column, pairs in updates.items():
                _executemany(
                    database,
                    dialect,
                    f'UPDATE "{table}" SET "{column}" = {p} WHERE "id" = {p}',
                    pairs,
                )


def _encrypt(kind: str, value):
    if crypto.is_token(value):
        return None  # sealed already (a repeated run)
    return crypto.encrypt(_plaintext(kind, value))


def _decrypt(kind: str, value):
    return crypto.decrypt(value) if crypto.is_token(value) else None


# --- coordinates and the geocoding cache --------------------------------------------------------


def _round_coordinates(database, dialect: str) -> None:
    cast = "::numeric" if dialect == "postgres" else ""  # PostgreSQL rounds numerics only
    database.execute_sql(
        f'UPDATE "patienten" SET "latitude" = ROUND("latitude"{cast}, 2), '
        f'"longitude" = ROUND("longitude"{cast}, 2) WHERE "latitude" IS NOT NULL'
    )


def normalised_address(strasse, plz, ort) -> str | None:
    """Frozen copy of ``operations.geocoding.nominatim.normalise_query`` as of 0010
    (``"hauptstraße 5, 10115 berlin"``): a migration must not change when the live code
    does."""
    parts = [re.sub(r"\s+", " ", (p or "").strip()).lower() for p in (strasse, plz, ort)]
    if not all(parts):
        return None
    return f"{parts[0]}, {parts[1]} {parts[2]}"


def _patient_addresses(database) -> set[str]:
    rows = database.execute_sql(
        'SELECT "strasse", "plz", "ort" FROM "patienten" WHERE "strasse" IS NOT NULL'
    ).fetchall()
    found = set()
    for strasse, plz, ort in rows:
        street = crypto.decrypt(strasse) if crypto.is_token(strasse) else strasse
        query = normalised_address(street, plz, ort)
        if query is not None:
            found.add(query)
    return found


def _json_param(database, dialect: str) -> str:
    return f"CAST({database.param} AS JSONB)" if dialect == "postgres" else database.param


def _cache_rows(database, queries: list[str]) -> list:
    p = database.param
    rows = []
    for start in range(0, len(queries), 500):
        chunk = queries[start : start + 500]
        rows += database.execute_sql(
            f'SELECT "id", "query", "latitude", "longitude", "result_data" FROM "geocache" '
            f'WHERE "query_type" = \'adresse\' AND "query" IN ({", ".join([p] * len(chunk))})',
            chunk,
        ).fetchall()
    return rows


def _seal_geocache(database, dialect: str) -> None:
    """Patient lookups: the address becomes its keyed hash, no display name, no raw answer,
    rounded coordinates. A row whose hash is there already (a repeated run) is dropped."""
    p = database.param
    present = {
        q for (q,) in database.execute_sql('SELECT "query" FROM "geocache"').fetchall()
    }
    for row_id, query, lat, lon, data in _cache_rows(database, sorted(_patient_addresses(database))):
        key = crypto.blind_index(query)
        if key in present:
            database.execute_sql(f'DELETE FROM "geocache" WHERE "id" = {p}', (row_id,))
            continue
        data = json.loads(data) if isinstance(data, str) else (data or {})
        kept = {k: data[k] for k in ("status", "attempts", "error") if k in data}
        database.execute_sql(
            f'UPDATE "geocache" SET "query" = {p}, "display_name" = NULL, '
            f'"latitude" = {p}, "longitude" = {p}, '
            f'"result_data" = {_json_param(database, dialect)} WHERE "id" = {p}',
            (
                key,
                None if lat is None else round(lat, 2),
                None if lon is None else round(lon, 2),
                json.dumps(kept),
                row_id,
            ),
        )
        present.add(key)


def _unseal_geocache(database) -> None:
    """The hashed patient lookups get their address back (from the patients)."""
    p = database.param
    present = {
        q for (q,) in database.execute_sql('SELECT "query" FROM "geocache"').fetchall()
    }
    for query in sorted(_patient_addresses(database)):
        for key in crypto.blind_indexes(query):
            if key not in present:
                continue
            if query in present:
                database.execute_sql(f'DELETE FROM "geocache" WHERE "query" = {p}', (key,))
            else:
                database.execute_sql(
                    f'UPDATE "geocache" SET "query" = {p} WHERE "query" = {p}', (query, key)
                )
                present.add(query)
            present.discard(key)


def up(database, dialect) -> None:
    _transform(database, dialect, _encrypt)
    _round_coordinates(database, dialect)
    _seal_geocache(database, dialect)


def down(database, dialect) -> None:
    _unseal_geocache(database)
    _transform(database, dialect, _decrypt)
    if dialect == "postgres":
        for statement in _alter_down():
            database.execute_sql(statement)


VERSION = 10
NAME = "sealed_health_data"
UP = {"sqlite": [], "postgres": _alter_up()}
# run by ``down`` after decrypting (the tokens are neither dates nor JSON)
DOWN = {"sqlite": [], "postgres": []}
