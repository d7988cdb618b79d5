"""0013 ``patienten.suchindex``: a keyed blind index for the person search (issue 15.2).

Patients' names, email and phone are encrypted, so a search by them would decrypt every
patient. The new column holds the keyed hashes (db/crypto.py ``blind_index``, keys derived
from ENCRYPTION_KEYS) of the normalised name tokens, email and phone
(psymatch/domain/people_search.py), space-separated. The data step fills it for every
patient in batches by id; ``crypto rotate`` re-keys it, the import and the erasure keep
it current (operations/people.py). Downgrade drops the column.
"""

from db import crypto
from psymatch.domain.people_search import index_text, search_terms

_COLUMNS = ("vorname", "nachname", "email", "telefon")


def backfill(database, batch: int = 1000) -> int:
    """Compute every patient's index from its stored (encrypted) values; returns the count."""
    param = database.param
    done, last = 0, 0
    while True:
        rows = database.execute_sql(
            f'SELECT "id", {", ".join(f"{chr(34)}{c}{chr(34)}" for c in _COLUMNS)} '
            f'FROM "patienten" WHERE "id" > {param} ORDER BY "id" LIMIT {batch}',
            (last,),
        ).fetchall()
        if not rows:
            return done
        for row in rows:
            values = [crypto.decrypt(v) if crypto.is_token(v) else v for v in row[1:]]
            database.execute_sql(
                f'UPDATE "patienten" SET "suchindex" = {param} WHERE "id" = {param}',
                (index_text(search_terms(*values), crypto.blind_index), row[0]),
            )
        done += len(rows)
        last = rows[-1][0]


def up(database, dialect) -> None:
    backfill(database)


# Indexes for the person search: the blind index as full-text words (PostgreSQL; SQLite
# scans), patients by PLZ, therapists by PLZ and by the start of their lowercased names.
_INDEXES = [
    'CREATE INDEX "patienten_plz" ON "patienten" ("plz")',
    'CREATE INDEX "therapeuten_plz" ON "therapeuten" ("plz")',
]
_NAMES = {
    "sqlite": [
        'CREATE INDEX "therapeuten_nachname_lower" ON "therapeuten" (lower("nachname"))',
        'CREATE INDEX "therapeuten_vorname_lower" ON "therapeuten" (lower("vorname"))',
    ],
    "postgres": [
        'CREATE INDEX "therapeuten_nachname_lower" ON "therapeuten" '
        '(lower("nachname") text_pattern_ops)',
        'CREATE INDEX "therapeuten_vorname_lower" ON "therapeuten" '
        '(lower("vorname") text_pattern_ops)',
        # must stay the expression of operations/people.py
        'CREATE INDEX "patienten_suchindex" ON "patienten" USING gin '
        "(to_tsvector('simple'::regconfig, coalesce(\"suchindex\", '')))",
    ],
}
_ADD = 'ALTER TABLE "patienten" ADD COLUMN "suchindex" TEXT'
_DROP = [
    'DROP INDEX "therapeuten_vorname_lower"',
    'DROP INDEX "therapeuten_nachname_lower"',
    'DROP INDEX "therapeuten_plz"',
    'DROP INDEX "patienten_plz"',
]

VERSION = 13
NAME = "patient_suchindex"
UP = {dialect: [_ADD, *_INDEXES, *names] for dialect, names in _NAMES.items()}
DOWN = {
    "sqlite": [*_DROP, 'ALTER TABLE "patienten" DROP COLUMN "suchindex"'],
    "postgres": [
        'DROP INDEX "patienten_suchindex"',
        *_DROP,
        'ALTER TABLE "patienten" DROP COLUMN "suchindex"',
    ],
}
