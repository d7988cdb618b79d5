"""0012 patient reach indexes: staff previews read only the patients within reach.

A staff preview or composition for one therapist loads only the searches whose patients
lie in a box around the therapist that holds the largest distance any patient accepts
(operations/snapshot.py ``within_reach``, ``largest_reach_km``). Two indexes serve it: the
patients' rounded coordinates, and their own ``max_km`` (an expression on the JSON column,
NULL when it is not a number), so that the largest one is read without a scan.

Downgrade drops only the two indexes; every row is kept.
"""

_COORDINATES = (
    'CREATE INDEX "patienten_latitude_longitude" ON "patienten" ("latitude", "longitude")'
)
# The expressions must stay exactly those of operations/snapshot.py _max_km_sql.
_MAX_KM = {
    "sqlite": 'CREATE INDEX "patienten_max_km" ON "patienten" ((CASE WHEN '
    "json_type(\"raeumliche_verfuegbarkeit\", '$.max_km') IN ('integer', 'real') "
    "THEN json_extract(\"raeumliche_verfuegbarkeit\", '$.max_km') END))",
    "postgres": 'CREATE INDEX "patienten_max_km" ON "patienten" ((CASE WHEN '
    "jsonb_typeof(\"raeumliche_verfuegbarkeit\" -> 'max_km') = 'number' "
    "THEN (\"raeumliche_verfuegbarkeit\" ->> 'max_km')::float8 END))",
}
_DROP = ['DROP INDEX "patienten_max_km"', 'DROP INDEX "patienten_latitude_longitude"']

VERSION = 12
NAME = "patient_reach_indexes"
UP = {dialect: [_COORDINATES, index] for dialect, index in _MAX_KM.items()}
DOWN = {"sqlite": _DROP, "postgres": _DROP}
