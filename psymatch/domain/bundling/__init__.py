"""Bundle selection: pure, deterministic, no database and no I/O (docs/domain.md §5 and §6).

Input is a ``Snapshot`` of therapists and searches as plain data; output is
selections (one therapist) or a round plan (all contactable practices), where
every chosen patient carries why it was chosen. The operations layer reads the
snapshot from the database and writes the result in one transaction.

Modules: ``data`` (input types and parameters), ``practice`` (practice groups,
owners, order), ``contact`` (contactability rules 1-4), ``rules`` (hard
constraints H1-H7 and soft filters S1-S4 as compiled scalar functions),
``arrays`` (snapshot -> arrays + spatial grid), ``kernel`` (the compiled
greedy round), ``select`` (the public functions).
"""

from .data import Params, SearchData, Snapshot, TherapistData
from .select import (
    ChosenPatient,
    RoundPlan,
    Selection,
    explain_pair,
    list_selectable,
    plan_round,
    select_for_therapist,
)

__all__ = [
    "ChosenPatient",
    "Params",
    "RoundPlan",
    "SearchData",
    "Selection",
    "Snapshot",
    "TherapistData",
    "explain_pair",
    "list_selectable",
    "plan_round",
    "select_for_therapist",
]
