"""0011 ``mitarbeiter``: staff accounts for the console's personal sign-in (JupyterHub).

One row per staff member: user name, display name, role (``lesen``, ``team``, ``admin``),
an Argon2id password hash and whether the account is active (operations/staff.py).
Downgrade drops the table.
"""

_SQL = {
    "sqlite": [
        'CREATE TABLE "mitarbeiter" ("id" INTEGER NOT NULL PRIMARY KEY, '
        '"created_at" DATETIME NOT NULL, "updated_at" DATETIME NOT NULL, '
        '"benutzername" VARCHAR(50) NOT NULL, "name" VARCHAR(100) NOT NULL, '
        "\"rolle\" VARCHAR(5) NOT NULL CHECK (rolle IN ('lesen', 'team', 'admin')), "
        '"passwort_hash" TEXT NOT NULL, "aktiv" INTEGER NOT NULL, "letzte_anmeldung" DATETIME)',
    ],
    "postgres": [
        'CREATE TABLE "mitarbeiter" ("id" SERIAL NOT NULL PRIMARY KEY, '
        '"created_at" TIMESTAMP NOT NULL, "updated_at" TIMESTAMP NOT NULL, '
        '"benutzername" VARCHAR(50) NOT NULL, "name" VARCHAR(100) NOT NULL, '
        "\"rolle\" VARCHAR(5) NOT NULL CHECK (rolle IN ('lesen', 'team', 'admin')), "
        '"passwort_hash" TEXT NOT NULL, "aktiv" BOOLEAN NOT NULL, "letzte_anmeldung" TIMESTAMP)',
    ],
}
_INDEX = 'CREATE UNIQUE INDEX "mitarbeiter_benutzername" ON "mitarbeiter" ("benutzername")'

VERSION = 11
NAME = "mitarbeiter"
UP = {dialect: [*statements, _INDEX] for dialect, statements in _SQL.items()}
DOWN = {"sqlite": ['DROP TABLE "mitarbeiter"'], "postgres": ['DROP TABLE "mitarbeiter"']}
