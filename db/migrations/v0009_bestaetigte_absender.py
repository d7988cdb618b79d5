"""0009 ``therapeuten.bestaetigte_absender``: sender addresses staff confirmed for a practice.

A reply is recorded automatically only when its From address is the practice's email or
one of these (``operations/senders.py``); the list starts empty. Downgrade drops the
column (SQLite 3.35 or newer drops columns in place).
"""

VERSION = 9
NAME = "bestaetigte_absender"
UP = {
    "sqlite": [
        'ALTER TABLE "therapeuten" ADD COLUMN "bestaetigte_absender" TEXT NOT NULL DEFAULT \'[]\''
    ],
    "postgres": [
        'ALTER TABLE "therapeuten" ADD COLUMN "bestaetigte_absender" JSONB NOT NULL DEFAULT \'[]\''
    ],
}
DOWN = {
    "sqlite": ['ALTER TABLE "therapeuten" DROP COLUMN "bestaetigte_absender"'],
    "postgres": ['ALTER TABLE "therapeuten" DROP COLUMN "bestaetigte_absender"'],
}
