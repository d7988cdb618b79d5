"""0007 email bodies: ``inhalt_markdown``, ``inhalt_html`` and ``inhalt_text`` move from
``emails`` into a table of their own, ``email_inhalte`` (one row per email, its key the
email's id, deleted with it).

Why (``db.models.EmailInhalt``): every status change of an email rewrote its bodies on
SQLite, about 25 KB of WAL for a change of a few bytes. The values move as they are
(Fernet tokens stay tokens); no row is lost in either direction.

SQLite drops and adds columns in place (``ALTER TABLE ... DROP COLUMN``, SQLite 3.35 or
newer). A downgrade adds the three columns back at the end of ``emails`` with the
default ``''`` that SQLite requires for a new NOT NULL column, and fills them.
"""

BODY_COLUMNS = ("inhalt_markdown", "inhalt_html", "inhalt_text")
_COLUMNS = ", ".join(f'"{c}"' for c in BODY_COLUMNS)

CREATE = (
    'CREATE TABLE "email_inhalte" ('
    '"email_id" INTEGER NOT NULL PRIMARY KEY, '
    '"inhalt_markdown" TEXT NOT NULL, '
    '"inhalt_html" TEXT NOT NULL, '
    '"inhalt_text" TEXT NOT NULL, '
    'FOREIGN KEY ("email_id") REFERENCES "emails" ("id") ON DELETE CASCADE)'
)
COPY_OUT = f'INSERT INTO "email_inhalte" ("email_id", {_COLUMNS}) SELECT "id", {_COLUMNS} FROM "emails"'
DROP_FROM_EMAILS = [f'ALTER TABLE "emails" DROP COLUMN "{c}"' for c in BODY_COLUMNS]

ADD_TO_EMAILS = [f'ALTER TABLE "emails" ADD COLUMN "{c}" TEXT NOT NULL DEFAULT \'\'' for c in BODY_COLUMNS]
COPY_BACK = (
    'UPDATE "emails" SET '
    + ", ".join(f'"{c}" = b."{c}"' for c in BODY_COLUMNS)
    + ' FROM "email_inhalte" AS b WHERE b."email_id" = "emails"."id"'
)
DROP_TABLE = 'DROP TABLE "email_inhalte"'

VERSION = 7
NAME = "email_inhalte"
UP = {
    "sqlite": [CREATE, COPY_OUT, *DROP_FROM_EMAILS],
    "postgres": [CREATE, COPY_OUT, *DROP_FROM_EMAILS],
}
DOWN = {
    "sqlite": [*ADD_TO_EMAILS, COPY_BACK, DROP_TABLE],
    # as 0001 created them: NOT NULL without a default
    "postgres": [
        *ADD_TO_EMAILS,
        COPY_BACK,
        *[f'ALTER TABLE "emails" ALTER COLUMN "{c}" DROP DEFAULT' for c in BODY_COLUMNS],
        DROP_TABLE,
    ],
}
