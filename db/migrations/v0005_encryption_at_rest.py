"""0005 encryption at rest: patient names and contact data, email subjects and bodies.

Columns that hold Fernet tokens (db/crypto.py) become TEXT on PostgreSQL (a token
is longer than the old VARCHAR limits; SQLite does not enforce them). The data
step encrypts every stored value with the first key of ``ENCRYPTION_KEYS``:

* ``patienten``: vorname, nachname, email, telefon, strasse, krankenversicherungsnummer
* ``emails``: betreff, inhalt_markdown, inhalt_html, inhalt_text, empfaenger_name,
  antwortinhalt; ``empfaenger_email`` only for emails to patients (therapist
  addresses stay plaintext for the weekly rule's index of 0004)

Downgrade decrypts every value and restores the old column types; every row is kept.
"""

from db import crypto

PATIENT_COLUMNS = {
    "vorname": "VARCHAR(100)",
    "nachname": "VARCHAR(100)",
    "email": "VARCHAR(254)",
    "telefon": "VARCHAR(50)",
    "strasse": "VARCHAR(200)",
    "krankenversicherungsnummer": "VARCHAR(50)",
}
EMAIL_COLUMNS = {
    "betreff": "VARCHAR(300)",
    "inhalt_markdown": "TEXT",
    "inhalt_html": "TEXT",
    "inhalt_text": "TEXT",
    "empfaenger_name": "VARCHAR(200)",
    "antwortinhalt": "TEXT",
}
# (table, column, only rows matching) of every encrypted value
TARGETS = [("patienten", c, "TRUE") for c in PATIENT_COLUMNS]
TARGETS += [("emails", c, "TRUE") for c in EMAIL_COLUMNS]
TARGETS += [("emails", "empfaenger_email", '"patient_id" IS NOT NULL')]
_TYPES = {
    "patienten": PATIENT_COLUMNS,
    "emails": {**EMAIL_COLUMNS, "empfaenger_email": "VARCHAR(254)"},
}


def _alter(table: str, types: dict, to_text: bool) -> list[str]:
    changed = [c for c, t in types.items() if t != "TEXT"]
    parts = [f'ALTER COLUMN "{c}" TYPE {"TEXT" if to_text else types[c]}' for c in changed]
    return [f'ALTER TABLE "{table}" ' + ", ".join(parts)]


SQLITE_UP: list[str] = []
POSTGRES_UP = [s for table, types in _TYPES.items() for s in _alter(table, types, True)]
SQLITE_DOWN: list[str] = []
POSTGRES_DOWN: list[str] = []  # run by ``down`` after decrypting (the tokens would not fit)


def _transform(database, convert, wanted) -> None:
    p = database.param
    for table, column, where in TARGETS:
        cursor = database.execute_sql(
            f'SELECT "id", "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL AND {where}'
        )
        rows = [(convert(value), row_id) for row_id, value in cursor.fetchall() if wanted(value)]
        if rows:
            database.cursor().executemany(
                f'UPDATE "{table}" SET "{column}" = {p} WHERE "id" = {p}', rows
            )


def up(database, dialect) -> None:
    _transform(database, crypto.encrypt, lambda value: not crypto.is_token(value))


def down(database, dialect) -> None:
    _transform(database, crypto.decrypt, crypto.is_token)
    if dialect == "postgres":
        for table, types in _TYPES.items():
            for statement in _alter(table, types, False):
                database.execute_sql(statement)


VERSION = 5
NAME = "encryption_at_rest"
UP = {"sqlite": SQLITE_UP, "postgres": POSTGRES_UP}
DOWN = {"sqlite": SQLITE_DOWN, "postgres": POSTGRES_DOWN}
