"""0015 settled conflicts and conflict alternatives (issue 15 point 3).

``konflikt_erledigungen``: how staff settled the conflict of one search (who, when, how,
which accepted lines it covered, how often it was reassigned); operations/conflicts.py.
``therapeutenanfrage.konflikt_anfrage_id``: the Anfrage whose conflict notice offered this
Anfrage's patients as alternatives (a plain indexed id).

Downgrade drops the table, the index and the column; every other row is kept.
"""

_CHECK = "CHECK (art IN ('gewinner_bestaetigt', 'neu_zugewiesen', 'sonstiges'))"
_TABLE = {
    "sqlite": (
        'CREATE TABLE "konflikt_erledigungen" ("id" INTEGER NOT NULL PRIMARY KEY, '
        '"platzsuche_id" INTEGER NOT NULL, '
        f'"art" VARCHAR(19) NOT NULL {_CHECK}, "therapist_id" INTEGER, '
        '"erledigt_am" DATETIME NOT NULL, "erledigt_von" VARCHAR(100) NOT NULL, '
        "\"notiz\" TEXT, \"zeilen\" TEXT NOT NULL DEFAULT '[]', "
        '"umzuweisungen" INTEGER NOT NULL CHECK (umzuweisungen >= 0), '
        'FOREIGN KEY ("platzsuche_id") REFERENCES "platzsuche" ("id") ON DELETE CASCADE)'
    ),
    "postgres": (
        'CREATE TABLE "konflikt_erledigungen" ("id" SERIAL NOT NULL PRIMARY KEY, '
        '"platzsuche_id" INTEGER NOT NULL, '
        f'"art" VARCHAR(19) NOT NULL {_CHECK}, "therapist_id" INTEGER, '
        '"erledigt_am" TIMESTAMP NOT NULL, "erledigt_von" VARCHAR(100) NOT NULL, '
        "\"notiz\" TEXT, \"zeilen\" JSONB NOT NULL DEFAULT '[]', "
        '"umzuweisungen" INTEGER NOT NULL CHECK (umzuweisungen >= 0), '
        'FOREIGN KEY ("platzsuche_id") REFERENCES "platzsuche" ("id") ON DELETE CASCADE)'
    ),
}
_COMMON_UP = [
    'CREATE UNIQUE INDEX "konflikt_erledigungen_platzsuche_id" '
    'ON "konflikt_erledigungen" ("platzsuche_id")',
    'ALTER TABLE "therapeutenanfrage" ADD COLUMN "konflikt_anfrage_id" INTEGER',
    'CREATE INDEX "therapeutenanfrage_konflikt_anfrage_id" '
    'ON "therapeutenanfrage" ("konflikt_anfrage_id")',
]
_DOWN = [
    'DROP INDEX "therapeutenanfrage_konflikt_anfrage_id"',
    'ALTER TABLE "therapeutenanfrage" DROP COLUMN "konflikt_anfrage_id"',
    'DROP TABLE "konflikt_erledigungen"',
]

VERSION = 15
NAME = "konflikt_erledigung"
UP = {dialect: [table, *_COMMON_UP] for dialect, table in _TABLE.items()}
DOWN = {"sqlite": _DOWN, "postgres": _DOWN}
