"""0014 bounces and absences (domain §0 point 12).

``therapeuten.email_ungueltig_seit``: when a permanent delivery failure (bounce) showed
the therapist's email address to be invalid; while set, inquiries and reminders to the
therapist go by phone (``operations/sending.py``). Staff entering an address clears it
(``operations/therapist_contact.py``).

``therapeutenanfrage.nachverfolgung_ab``: the first local day the follow-up of an
Anfrage may happen, set from an out-of-office reply's return date (the working day
after it); the follow-up and the expiry wait for it.

Both columns start NULL (nothing known); downgrade drops them.
"""

VERSION = 14
NAME = "bounces_absences"
UP = {
    "sqlite": [
        'ALTER TABLE "therapeuten" ADD COLUMN "email_ungueltig_seit" DATETIME',
        'ALTER TABLE "therapeutenanfrage" ADD COLUMN "nachverfolgung_ab" DATE',
    ],
    "postgres": [
        'ALTER TABLE "therapeuten" ADD COLUMN "email_ungueltig_seit" TIMESTAMP',
        'ALTER TABLE "therapeutenanfrage" ADD COLUMN "nachverfolgung_ab" DATE',
    ],
}
DOWN = {
    "sqlite": [
        'ALTER TABLE "therapeutenanfrage" DROP COLUMN "nachverfolgung_ab"',
        'ALTER TABLE "therapeuten" DROP COLUMN "email_ungueltig_seit"',
    ],
    "postgres": [
        'ALTER TABLE "therapeutenanfrage" DROP COLUMN "nachverfolgung_ab"',
        'ALTER TABLE "therapeuten" DROP COLUMN "email_ungueltig_seit"',
    ],
}
