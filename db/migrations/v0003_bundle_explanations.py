"""0003 bundle explanations: why each patient was chosen for a bundle.

Adds ``therapeut_anfrage_patient.auswahl`` (JSON: soft filters passed,
relaxation level, distance, waiting days).

Downgrade drops only that column: every bundle line and every other row is kept.
"""

SQLITE_UP = ['ALTER TABLE "therapeut_anfrage_patient" ADD COLUMN "auswahl" TEXT']
POSTGRES_UP = ['ALTER TABLE "therapeut_anfrage_patient" ADD COLUMN "auswahl" JSONB']
SQLITE_DOWN = ['ALTER TABLE "therapeut_anfrage_patient" DROP COLUMN "auswahl"']
POSTGRES_DOWN = SQLITE_DOWN

VERSION = 3
NAME = "bundle_explanations"
UP = {"sqlite": SQLITE_UP, "postgres": POSTGRES_UP}
DOWN = {"sqlite": SQLITE_DOWN, "postgres": POSTGRES_DOWN}
