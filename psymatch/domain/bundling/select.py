"""Public selection functions: one therapist (staff), a whole round, and explanations."""

from __future__ import annotations

import contextlib
import gc
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from . import contact, kernel, rules
from .arrays import build_search_arrays, build_therapist_arrays
from .data import Params, SearchData, Snapshot, TherapistData, age_in_years

OK = "OK"
NO_ELIGIBLE = "NO_ELIGIBLE_PATIENTS"
TOO_FEW = "TOO_FEW_ELIGIBLE_PATIENTS"
NOT_FOUND = "THERAPIST_NOT_FOUND"
NOT_CONTACTABLE = "THERAPIST_NOT_CONTACTABLE"
INVALID_PREFIX = "INVALID_PLZ_PREFIX"


class ChosenPatient(NamedTuple):
    """One patient of a bundle and why it is there (explainable bundles, docs/domain.md §6.7).

    A NamedTuple because a round creates ~100k of them and frozen dataclasses
    are several times slower to construct.
    """

    position: int
    search_id: int
    patient_id: int
    distance_km: float
    waiting_days: int
    soft_passed: tuple[str, ...]  # each soft filter the patient passes on its own
    relaxation_level: int  # soft filters S1..Sk applied to the whole bundle (4 = none relaxed)
    years_to_age_bound: int | None = None

    def as_dict(self) -> dict:
        out = self._asdict()
        out["soft_passed"] = list(self.soft_passed)
        return out


class Selection(NamedTuple):
    therapist_id: int
    outcome: str
    patients: tuple[ChosenPatient, ...] = ()
    eligible_count: int = 0
    reason: str | None = None  # contactability reason for THERAPIST_NOT_CONTACTABLE

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    def as_dict(self) -> dict:
        return {
            "therapist_id": self.therapist_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "eligible_count": self.eligible_count,
            "patients": [p.as_dict() for p in self.patients],
        }


@dataclass
class RoundPlan:
    bundles: list[Selection] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)  # therapist id -> reason
    therapists_considered: int = 0

    @property
    def patients_offered(self) -> int:
        return sum(len(b.patients) for b in self.bundles)


def valid_prefix(prefix: str | None, params: Params) -> bool:
    return prefix is not None and bool(re.fullmatch(rf"[0-9]{{{params.plz_digits}}}", prefix))


def _usable(searches, plz_prefix, search_filter):
    mask = np.array(
        [
            s.status == "aktiv"
            and s.vermittelter_therapeut_id is None
            and (plz_prefix is None or (s.plz or "").startswith(plz_prefix))
            and (search_filter is None or search_filter(s))
            for s in searches
        ],
        dtype=np.bool_,
    )
    return mask


# soft filter bits (S1 = 1 ... S4 = 8) -> the names of the filters passed
SOFT_NAMES = tuple(
    tuple(code for code, bit in (("S1", 1), ("S2", 2), ("S3", 4), ("S4", 8)) if bits & bit)
    for bits in range(16)
)


def _selections(
    therapists: list[TherapistData],
    snapshot: Snapshot,
    params: Params,
    *,
    min_size: int,
    plz_prefix=None,
    search_filter: Callable | None = None,
    commit: bool,
) -> list[Selection]:
    searches = snapshot.searches
    s_arrays = build_search_arrays(snapshot, params)
    usable = _usable(searches, plz_prefix, search_filter)
    t_arrays = build_therapist_arrays(therapists)
    chosen, dist, bits, levels, eligible = kernel.run(
        t_arrays,
        s_arrays,
        usable,
        min_size=min_size,
        max_size=params.max_size,
        cap=params.parallel_cap,
        radius_km=params.earth_radius_km,
        commit=commit,
        # rounds may stop early; a single selection counts every eligible patient
        early_exit=commit,
    )
    # Python lists: indexing numpy arrays element by element is slow for ~100k patients.
    chosen, dist, bits = chosen.tolist(), dist.tolist(), bits.tolist()
    levels, eligible = levels.tolist(), eligible.tolist()
    wait, age = s_arrays.wait.tolist(), s_arrays.age.tolist()
    age_min, age_max = t_arrays.age_min.tolist(), t_arrays.age_max.tolist()
    out = []
    for i, therapist in enumerate(therapists):
        count = eligible[i]
        if chosen[i][0] < 0:
            outcome = NO_ELIGIBLE if count == 0 else TOO_FEW
            out.append(Selection(therapist.id, outcome, eligible_count=count))
            continue
        bounds = [b for b in (age_min[i], age_max[i]) if b >= 0]
        patients = []
        for pos, k in enumerate(chosen[i]):
            if k < 0:
                break
            search = searches[k]
            gap = min(abs(age[k] - b) for b in bounds) if bounds and age[k] >= 0 else None
            patients.append(
                ChosenPatient(
                    pos + 1,
                    search.id,
                    search.patient_id,
                    dist[i][pos],
                    wait[k],
                    SOFT_NAMES[bits[i][pos]],
                    levels[i],
                    gap,
                )
            )
        out.append(Selection(therapist.id, OK, tuple(patients), eligible_count=count))
    return out


def select_for_therapist(
    snapshot: Snapshot,
    params: Params,
    therapist_id: int,
    *,
    mode: str = "staff",
    plz_prefix: str | None = None,
    check_contact: bool = True,
    search_filter: Callable[[SearchData], bool] | None = None,
) -> Selection:
    """The selection of docs/domain.md §6.1-6.6 for one therapist; nothing is stored.

    ``mode`` "staff" uses ``staff_min_size``, "round" ``round_min_size``.
    ``check_contact=False`` serves conflict alternatives, where the therapist has
    just answered and is in cooling (docs/domain.md §10). ``search_filter`` keeps only
    the searches it accepts (conflict alternatives leave out patients the therapist
    declined).
    """
    if plz_prefix is not None and not valid_prefix(plz_prefix, params):
        return Selection(therapist_id, INVALID_PREFIX)
    therapist = next((t for t in snapshot.therapists if t.id == therapist_id), None)
    if therapist is None:
        return Selection(therapist_id, NOT_FOUND)
    if check_contact:
        reason = contact.contact_reason(therapist, snapshot, params)
        if reason:
            return Selection(therapist_id, NOT_CONTACTABLE, reason=reason)
    min_size = params.round_min_size if mode == "round" else params.staff_min_size
    return _selections(
        [therapist],
        snapshot,
        params,
        min_size=min_size,
        plz_prefix=plz_prefix,
        search_filter=search_filter,
        commit=False,
    )[0]


def plan_round(
    snapshot: Snapshot, params: Params, search_filter: Callable[[SearchData], bool] | None = None
) -> RoundPlan:
    """A whole automatic round (docs/domain.md §6.1) as a plan: bundles and skipped therapists."""
    with _gc_paused():
        return _plan_round(snapshot, params, search_filter)


@contextlib.contextmanager
def _gc_paused():
    """A round allocates ~200k short-lived objects; CPython's cyclic GC would rescan the
    whole snapshot again and again meanwhile. None of them form cycles, so pause it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plan_round(snapshot: Snapshot, params: Params, search_filter) -> RoundPlan:
    owners, skipped = contact.round_owners(snapshot, params)
    plan = RoundPlan(skipped=dict(skipped), therapists_considered=len(owners))
    for selection in _selections(
        owners,
        snapshot,
        params,
        min_size=params.round_min_size,
        search_filter=search_filter,
        commit=True,
    ):
        if selection.ok:
            plan.bundles.append(selection)
        else:
            plan.skipped[selection.therapist_id] = selection.outcome
    return plan


def list_selectable(snapshot: Snapshot, params: Params, plz_prefix: str) -> list[TherapistData]:
    """Selectable therapists of a region (docs/domain.md §6.2); ValueError for a bad prefix."""
    if not valid_prefix(plz_prefix, params):
        raise ValueError(INVALID_PREFIX)
    return contact.selectable(snapshot, params, plz_prefix)


def explain_pair(
    snapshot: Snapshot,
    params: Params,
    therapist_id: int,
    search_id: int,
    plz_prefix: str | None = None,
) -> str | None:
    """The first failing rule for a (therapist, search) pair, or None when the pair is eligible.

    Pool rules first (SEARCH_STATUS, PLACED, PARALLEL_CAP, PLZ_PREFIX), then H1-H7 in
    table order (docs/domain.md §6.4).
    """
    therapist = next(t for t in snapshot.therapists if t.id == therapist_id)
    search = next(s for s in snapshot.searches if s.id == search_id)
    if search.status != "aktiv":
        return "SEARCH_STATUS"
    if search.vermittelter_therapeut_id is not None:
        return "PLACED"
    if search.pending >= params.parallel_cap:
        return "PARALLEL_CAP"
    if plz_prefix is not None and not (search.plz or "").startswith(plz_prefix):
        return "PLZ_PREFIX"
    nan = math.nan
    ok, _ = rules.distance_within(
        nan if therapist.latitude is None else therapist.latitude,
        nan if therapist.longitude is None else therapist.longitude,
        nan if search.latitude is None else search.latitude,
        nan if search.longitude is None else search.longitude,
        float(search.max_km) if search.max_km else params.default_max_km,
        params.earth_radius_km,
    )
    if not ok:
        return "H1"
    if therapist.id in search.excluded:
        return "H2"
    if not rules.patient_gender_preference_ok(
        rules.preference_code(search.bevorzugtes_therapeutengeschlecht),
        rules.gender_code(therapist.geschlecht),
    ):
        return "H3"
    if not rules.procedure_ok(
        rules.patient_procedure_code(search.bevorzugtes_therapieverfahren),
        rules.therapist_procedure_code(therapist.psychotherapieverfahren),
    ):
        return "H4"
    age = age_in_years(search.geburtsdatum, snapshot.today)
    if not rules.age_ok(
        rules.bound_code(therapist.alter_min),
        rules.bound_code(therapist.alter_max),
        -1 if age is None else age,
    ):
        return "H5"
    if not rules.therapist_gender_preference_ok(
        rules.preference_code(therapist.geschlechtspraeferenz), rules.gender_code(search.geschlecht)
    ):
        return "H6"
    if not rules.group_ok(
        bool(therapist.bevorzugt_gruppentherapie),
        {True: 1, False: 0}.get(search.offen_fuer_gruppentherapie, -1),
    ):
        return "H7"
    return None
