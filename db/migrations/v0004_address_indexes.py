"""0004 address indexes: practices and the weekly email rule look addresses up normalised.

Expression indexes on ``lower(trim(...))`` of the therapist's email and of an
email's recipient (with the queue time), so sending an Anfrage finds the
practice and the last inquiry to its address without scanning either table.

Downgrade drops only these two indexes; every row is kept.
"""

SQLITE_UP = [
    'CREATE INDEX "therapeuten_email_normalised" ON "therapeuten" (lower(trim("email")))',
    'CREATE INDEX "emails_recipient_normalised" ON "emails" '
    '(lower(trim("empfaenger_email")), "in_warteschlange_am")',
]
POSTGRES_UP = SQLITE_UP
SQLITE_DOWN = [
    'DROP INDEX "emails_recipient_normalised"',
    'DROP INDEX "therapeuten_email_normalised"',
]
POSTGRES_DOWN = SQLITE_DOWN

VERSION = 4
NAME = "address_indexes"
UP = {"sqlite": SQLITE_UP, "postgres": POSTGRES_UP}
DOWN = {"sqlite": SQLITE_DOWN, "postgres": POSTGRES_DOWN}
