"""Hard constraints H1-H7 and soft filters S1-S4 for one (therapist, patient) pair.

Each rule is a small compiled (numba) function on plain numbers so that the
round's kernel and the Python explanation of a single decision share one
implementation. Categorical values are coded as small integers here.

Codes: patient/therapist gender ``männlich`` 0, ``weiblich`` 1, ``divers`` 2,
``keine_Angabe`` 3; a gender preference ``Männlich`` 0, ``Weiblich`` 1, none or
``Egal`` -1; procedure ``Verhaltenstherapie`` 1,
``tiefenpsychologisch_fundierte_Psychotherapie`` 2, therapist ``egal``/none 0,
patient preference ``egal``/none -1; unknown age -1; unknown bound -1.
"""

from __future__ import annotations

import math

from numba import njit

from psymatch.domain import vocab
from psymatch.domain.geo import haversine_km

GENDER = {"männlich": 0, "weiblich": 1, "divers": 2, "keine_Angabe": 3}
GENDER_PREFERENCE = {"Männlich": 0, "Weiblich": 1}
PROCEDURE = {"Verhaltenstherapie": 1, "tiefenpsychologisch_fundierte_Psychotherapie": 2}
SYMPTOM_BIT = {label: 1 << i for i, label in enumerate(vocab.SYMPTOME)}

HARD_CODES = ("H1", "H2", "H3", "H4", "H5", "H6", "H7")
POOL_CODES = ("SEARCH_STATUS", "PLACED", "PARALLEL_CAP", "PLZ_PREFIX")
SOFT_CODES = ("S1", "S2", "S3", "S4")


def gender_code(value) -> int:
    return GENDER.get(value, 3)


def preference_code(value) -> int:
    return GENDER_PREFERENCE.get(value, -1)


def therapist_procedure_code(value) -> int:
    return PROCEDURE.get(value, 0)


def patient_procedure_code(value) -> int:
    return PROCEDURE.get(value, -1)


def bound_code(value) -> int:
    """An age bound; 0 counts as no bound (docs/domain.md §3)."""
    return value if isinstance(value, int) and value > 0 else -1


def symptom_mask(labels) -> int:
    mask = 0
    for label in labels or ():
        mask |= SYMPTOM_BIT.get(label, 0)
    return mask


@njit(cache=True)
def distance_within(t_lat, t_lon, s_lat, s_lon, max_km, radius_km):
    """H1: (passes, distance); an unknown location fails (fail-closed, docs/domain.md §6.4)."""
    if math.isnan(t_lat) or math.isnan(t_lon) or math.isnan(s_lat) or math.isnan(s_lon):
        return False, math.nan
    distance = haversine_km(t_lat, t_lon, s_lat, s_lon, radius_km)
    return distance <= max_km, distance


@njit(cache=True)
def patient_gender_preference_ok(preference, therapist_gender):
    """H3: the patient's wish for the therapist's gender."""
    return preference < 0 or preference == therapist_gender


@njit(cache=True)
def procedure_ok(preference, therapist_procedure):
    """H4: a specific wish needs exactly that procedure; a therapist's ``egal`` is not enough."""
    return preference < 0 or preference == therapist_procedure


@njit(cache=True)
def age_ok(age_min, age_max, age):
    """H5 (and S3): inside the therapist's age bounds; unknown age fails an active bound."""
    if age_min < 0 and age_max < 0:
        return True
    if age < 0:
        return False
    if age_min >= 0 and age < age_min:
        return False
    return not (age_max >= 0 and age > age_max)


@njit(cache=True)
def therapist_gender_preference_ok(preference, patient_gender):
    """H6: the therapist's wish for the patient's gender."""
    return preference < 0 or preference == patient_gender


@njit(cache=True)
def group_ok(therapist_prefers_group, patient_open):
    """H7 (and S4): group therapists need patients open to groups (1); unknown (-1) fails."""
    return (not therapist_prefers_group) or patient_open == 1


@njit(cache=True)
def is_excluded(therapist_id, excluded_ids, start, end):
    """H2: the therapist is on the search's or the patient's exclusion list."""
    for k in range(start, end):  # noqa: SIM110 (numba compiles plain loops, not generators)
        if excluded_ids[k] == therapist_id:
            return True
    return False


@njit(cache=True)
def availability_overlap(t_day, t_from, t_to, t_start, t_end, p_day, p_from, p_to, p_start, p_end):
    """S1: some weekday with a patient and a therapist range where max(starts) < min(ends).

    A therapist without working hours passes every patient.
    """
    if t_end <= t_start:
        return True
    for i in range(p_start, p_end):
        for j in range(t_start, t_end):
            if p_day[i] == t_day[j] and max(p_from[i], t_from[j]) < min(p_to[i], t_to[j]):
                return True
    return False


@njit(cache=True)
def symptoms_ok(therapist_mask, patient_mask):
    """S2: a therapist's symptom focus needs at least one shared symptom."""
    return therapist_mask == 0 or (therapist_mask & patient_mask) != 0
