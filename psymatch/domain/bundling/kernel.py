"""The compiled greedy selection over therapists in serving order (docs/domain.md §6.2-6.6).

For each therapist: visit the grid cells within reach, keep the searches that
pass the pool rules and H1-H7, give each the number of soft filters it passes
in priority order (S1, S1+S2, ...), use the strictest level that still leaves
``min_size`` candidates, and take the best ``max_size`` of them by (waiting
days desc, pending rows asc, distance asc, start asc, id asc). With ``commit``
the chosen searches' pending counts grow at once, so later therapists of the
same round see them (parallel cap and fairness, docs/domain.md §6.6).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .arrays import CELL_LAT_DEG, CELL_LON_DEG
from .rules import (
    age_ok,
    availability_overlap,
    distance_within,
    group_ok,
    is_excluded,
    patient_gender_preference_ok,
    procedure_ok,
    symptoms_ok,
    therapist_gender_preference_ok,
)

# Conservative km per degree (a little below the true ~111.2) so the cell
# window is never too small; the exact haversine decides afterwards.
_KM_PER_DEG = 110.0
SOFT_LEVELS = 4
# Soft filter bits: S1 = 1, S2 = 2, S3 = 4, S4 = 8. The level of a candidate is the
# number of filters it passes in priority order without a gap (C_k = passes S1..Sk).
LEVEL_OF_BITS = np.array([0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0, 4], dtype=np.int64)


@njit(cache=True)
def soft_bits(
    t_day,
    t_from,
    t_to,
    t_start,
    t_end,
    p_day,
    p_from,
    p_to,
    p_start,
    p_end,
    t_sym,
    p_sym,
    age_min,
    age_max,
    age,
    t_group,
    p_group,
):
    """Which soft filters a candidate passes, each on its own (for levels and explanations)."""
    bits = 0
    if availability_overlap(
        t_day, t_from, t_to, t_start, t_end, p_day, p_from, p_to, p_start, p_end
    ):
        bits |= 1
    if symptoms_ok(t_sym, p_sym):
        bits |= 2
    if age_ok(age_min, age_max, age):
        bits |= 4
    if group_ok(t_group, p_group):
        bits |= 8
    return bits


@njit(cache=True)
def _better(a, b, wait, pending, dist_a, dist_b, created, ids):
    """True when search ``a`` comes before ``b`` in the selection order."""
    if wait[a] != wait[b]:
        return wait[a] > wait[b]
    if pending[a] != pending[b]:
        return pending[a] < pending[b]
    if dist_a != dist_b:
        return dist_a < dist_b
    if created[a] != created[b]:
        return created[a] < created[b]
    return ids[a] < ids[b]


@njit(cache=True)
def _insert(s, d, top, top_dist, size, max_size, wait, pending, created, ids):
    """Insert search ``s`` into the sorted best-first list ``top``; returns the new size."""
    if size == max_size and not _better(
        s, top[size - 1], wait, pending, d, top_dist[size - 1], created, ids
    ):
        return size
    pos = size if size < max_size else max_size - 1
    while pos > 0 and _better(s, top[pos - 1], wait, pending, d, top_dist[pos - 1], created, ids):
        top[pos] = top[pos - 1]
        top_dist[pos] = top_dist[pos - 1]
        pos -= 1
    top[pos] = s
    top_dist[pos] = d
    return size + 1 if size < max_size else size


@njit(cache=True)
def select_many(
    t_ids,
    t_lat,
    t_lon,
    t_gender,
    t_proc,
    t_amin,
    t_amax,
    t_gpref,
    t_group,
    t_sym,
    t_av_start,
    t_av_day,
    t_av_from,
    t_av_to,
    s_ids,
    s_lat,
    s_lon,
    s_maxkm,
    s_wait,
    s_created,
    s_pending,
    s_usable,
    s_gender,
    s_pref_gender,
    s_pref_proc,
    s_age,
    s_group_open,
    s_sym,
    s_excl_start,
    s_excl_ids,
    s_av_start,
    s_av_day,
    s_av_from,
    s_av_to,
    order,
    cell_start,
    lat0,
    lon0,
    rows,
    cols,
    reach_km,
    min_size,
    max_size,
    cap,
    radius_km,
    commit,
    early_exit,
):
    m = t_ids.shape[0]
    chosen = np.full((m, max_size), -1, dtype=np.int64)
    chosen_dist = np.full((m, max_size), np.nan, dtype=np.float64)
    levels = np.zeros(m, dtype=np.int64)
    eligible = np.zeros(m, dtype=np.int64)
    n_searches = s_ids.shape[0]
    cand = np.empty(n_searches, dtype=np.int64)
    cand_level = np.empty(n_searches, dtype=np.int64)
    cand_dist = np.empty(n_searches, dtype=np.float64)
    cand_bits = np.empty(n_searches, dtype=np.int64)
    top_bits = np.empty(max_size, dtype=np.int64)
    full = np.empty(max_size, dtype=np.int64)
    full_dist = np.empty(max_size, dtype=np.float64)
    s_coslat = np.cos(np.radians(s_lat))
    km_per_deg = radius_km * math.pi / 180.0  # exact on the haversine sphere
    chosen_bits = np.zeros((m, max_size), dtype=np.int64)
    counts = np.zeros(SOFT_LEVELS + 1, dtype=np.int64)
    top = np.empty(max_size, dtype=np.int64)
    top_dist = np.empty(max_size, dtype=np.float64)

    for i in range(m):
        lat, lon = t_lat[i], t_lon[i]
        if math.isnan(lat) or math.isnan(lon) or rows == 0:
            continue
        lat_span = reach_km / _KM_PER_DEG
        r0 = max(0, int(math.floor((lat - lat_span - lat0) / CELL_LAT_DEG)))
        r1 = min(rows - 1, int(math.floor((lat + lat_span - lat0) / CELL_LAT_DEG)))
        widest = min(abs(lat) + lat_span, 89.0)
        lon_span = reach_km / (_KM_PER_DEG * math.cos(math.radians(widest)))
        c0 = max(0, int(math.floor((lon - lon_span - lon0) / CELL_LON_DEG)))
        c1 = min(cols - 1, int(math.floor((lon + lon_span - lon0) / CELL_LON_DEG)))
        cos_lat = math.cos(math.radians(lat))
        n = 0
        # Online best max_size among candidates passing every soft filter (level 4).
        # Once it is full, level 4 is certain to be used (max_size >= min_size), and a
        # search waiting less than its last member can never enter the bundle; cells
        # are sorted by waiting time, so the rest of such a cell is skipped.
        full_size = 0
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                cell = r * cols + c
                for k in range(cell_start[cell], cell_start[cell + 1]):
                    s = order[k]
                    if (
                        early_exit
                        and full_size == max_size
                        and s_wait[s] < s_wait[full[max_size - 1]]
                    ):
                        break
                    if not s_usable[s] or s_pending[s] >= cap:
                        continue
                    # Cheap rejections before the rounded haversine. The latitude gap is a
                    # true lower bound of the great-circle distance. The flat-earth estimate
                    # uses the cosine of the higher latitude, so it never counts an east-west
                    # gap longer than it is; it only overestimates the great circle by the
                    # parallel's curvature (far below 5 % within Germany), hence the margin.
                    d_lat_km = (s_lat[s] - lat) * km_per_deg
                    limit = s_maxkm[s] + 0.01
                    if abs(d_lat_km) > limit:
                        continue
                    cos_min = min(cos_lat, s_coslat[s])
                    d_lon_km = (s_lon[s] - lon) * km_per_deg * cos_min
                    far = limit * 1.05 + 1.0
                    if d_lat_km * d_lat_km + d_lon_km * d_lon_km > far * far:
                        continue
                    ok, dist = distance_within(lat, lon, s_lat[s], s_lon[s], s_maxkm[s], radius_km)
                    if not ok:
                        continue
                    if is_excluded(t_ids[i], s_excl_ids, s_excl_start[s], s_excl_start[s + 1]):
                        continue
                    if not patient_gender_preference_ok(s_pref_gender[s], t_gender[i]):
                        continue
                    if not procedure_ok(s_pref_proc[s], t_proc[i]):
                        continue
                    if not age_ok(t_amin[i], t_amax[i], s_age[s]):
                        continue
                    if not therapist_gender_preference_ok(t_gpref[i], s_gender[s]):
                        continue
                    if not group_ok(t_group[i], s_group_open[s]):
                        continue
                    bits = soft_bits(
                        t_av_day,
                        t_av_from,
                        t_av_to,
                        t_av_start[i],
                        t_av_start[i + 1],
                        s_av_day,
                        s_av_from,
                        s_av_to,
                        s_av_start[s],
                        s_av_start[s + 1],
                        t_sym[i],
                        s_sym[s],
                        t_amin[i],
                        t_amax[i],
                        s_age[s],
                        t_group[i],
                        s_group_open[s],
                    )
                    cand_bits[n] = bits
                    cand[n] = s
                    cand_level[n] = LEVEL_OF_BITS[bits]
                    cand_dist[n] = dist
                    n += 1
                    if early_exit and bits == 15:
                        full_size = _insert(
                            s,
                            dist,
                            full,
                            full_dist,
                            full_size,
                            max_size,
                            s_wait,
                            s_pending,
                            s_created,
                            s_ids,
                        )
        eligible[i] = n
        if n < min_size or n == 0:
            continue
        counts[:] = 0
        for j in range(n):
            counts[cand_level[j]] += 1
        use = 0
        at_least = 0
        for level in range(SOFT_LEVELS, -1, -1):
            at_least += counts[level]
            if at_least >= min_size:
                use = level
                break
        size = 0
        for j in range(n):
            if cand_level[j] < use:
                continue
            s, d, b = cand[j], cand_dist[j], cand_bits[j]
            if size == max_size and not _better(
                s, top[size - 1], s_wait, s_pending, d, top_dist[size - 1], s_created, s_ids
            ):
                continue
            pos = size if size < max_size else max_size - 1
            while pos > 0 and _better(
                s, top[pos - 1], s_wait, s_pending, d, top_dist[pos - 1], s_created, s_ids
            ):
                top[pos] = top[pos - 1]
                top_dist[pos] = top_dist[pos - 1]
                top_bits[pos] = top_bits[pos - 1]
                pos -= 1
            top[pos] = s
            top_dist[pos] = d
            top_bits[pos] = b
            if size < max_size:
                size += 1
        levels[i] = use
        for j in range(size):
            chosen[i, j] = top[j]
            chosen_dist[i, j] = top_dist[j]
            chosen_bits[i, j] = top_bits[j]
            if commit:
                s_pending[top[j]] += 1
    return chosen, chosen_dist, chosen_bits, levels, eligible


def run(
    therapists, searches, usable, *, min_size, max_size, cap, radius_km, commit, early_exit=False
):
    """Call the kernel with the arrays of ``arrays.TherapistArrays`` / ``SearchArrays``.

    ``usable`` masks the searches a trigger may offer (pool, prefix, rollout).
    ``searches.pending`` is updated in place when ``commit`` is true.
    """
    t, s = therapists, searches
    return select_many(
        t.ids,
        t.lat,
        t.lon,
        t.gender,
        t.procedure,
        t.age_min,
        t.age_max,
        t.pref_gender,
        t.group,
        t.symptoms,
        t.av_start,
        t.av_day,
        t.av_from,
        t.av_to,
        s.ids,
        s.lat,
        s.lon,
        s.max_km,
        s.wait,
        s.created,
        s.pending,
        usable,
        s.gender,
        s.pref_gender,
        s.pref_procedure,
        s.age,
        s.group_open,
        s.symptoms,
        s.excl_start,
        s.excl_ids,
        s.av_start,
        s.av_day,
        s.av_from,
        s.av_to,
        s.order,
        s.cell_start,
        s.grid_lat0,
        s.grid_lon0,
        s.grid_rows,
        s.grid_cols,
        s.reach_km,
        min_size,
        max_size,
        cap,
        radius_km,
        commit,
        early_exit,
    )
