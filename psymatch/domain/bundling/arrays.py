"""The snapshot as flat arrays for the compiled kernel, plus a spatial grid.

Searches are bucketed into grid cells of about 28 x 28 km; a therapist only
looks at the cells that the largest travel distance can reach, so a round never
compares every therapist with every search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain

import numpy as np

from . import rules
from .data import Params, Snapshot, TherapistData, age_in_years

CELL_LAT_DEG = 0.25
CELL_LON_DEG = 0.40
KM_PER_DEG_LAT = 111.2


def schedules_csr(range_lists) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Offsets, weekday, start and end minute of every range of every schedule."""
    offsets, flat = [0], []
    extend, mark = flat.extend, offsets.append
    for ranges in range_lists:
        extend(ranges)
        mark(len(flat))
    # fromiter over the flattened triples is much faster than np.array on a list of tuples
    table = np.fromiter(chain.from_iterable(flat), dtype=np.int64, count=3 * len(flat))
    table = table.reshape(-1, 3)
    return np.array(offsets, np.int64), table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy()


def exclusions_csr(searches) -> tuple[np.ndarray, np.ndarray]:
    offsets, ids = [0], []
    for search in searches:
        if search.excluded:
            ids.extend(sorted(search.excluded))
        offsets.append(len(ids))
    return np.array(offsets, np.int64), np.array(ids, np.int64)


def _nan(value) -> float:
    return math.nan if value is None else float(value)


@dataclass
class SearchArrays:
    ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    max_km: np.ndarray
    wait: np.ndarray
    created: np.ndarray
    pending: np.ndarray
    gender: np.ndarray
    pref_gender: np.ndarray
    pref_procedure: np.ndarray
    age: np.ndarray
    group_open: np.ndarray
    symptoms: np.ndarray
    excl_start: np.ndarray
    excl_ids: np.ndarray
    av_start: np.ndarray
    av_day: np.ndarray
    av_from: np.ndarray
    av_to: np.ndarray
    # spatial grid
    order: np.ndarray
    cell_start: np.ndarray
    grid_lat0: float
    grid_lon0: float
    grid_rows: int
    grid_cols: int
    reach_km: float


def build_search_arrays(snapshot: Snapshot, params: Params, searches=None) -> SearchArrays:
    searches = snapshot.searches if searches is None else searches
    today, default_km, nan = snapshot.today, params.default_max_km, math.nan
    gender, preference = rules.GENDER.get, rules.GENDER_PREFERENCE.get
    procedure, mask, group_code = rules.PROCEDURE.get, rules.symptom_mask, {True: 1, False: 0}.get
    columns = (
        list(
            zip(
                *[
                    (
                        s.id,
                        nan if s.latitude is None else s.latitude,
                        nan if s.longitude is None else s.longitude,
                        s.max_km or default_km,
                        s.created_at,
                        s.pending,
                        gender(s.geschlecht, 3),
                        preference(s.bevorzugtes_therapeutengeschlecht, -1),
                        procedure(s.bevorzugtes_therapieverfahren, -1),
                        -1 if s.geburtsdatum is None else age_in_years(s.geburtsdatum, today),
                        group_code(s.offen_fuer_gruppentherapie, -1),
                        mask(s.symptome) if s.symptome else 0,
                    )
                    for s in searches
                ],
                strict=True,
            )
        )
        or [()] * 12
    )
    ids, lat, lon, max_km, created, pending, gen, pref, proc, age, group, sym = columns
    created = np.array(created, dtype="datetime64[us]")
    now = np.datetime64(snapshot.now, "us")
    wait = np.maximum((now - created) // np.timedelta64(1, "D"), 0).astype(np.int64)
    excl_offsets, excl_ids = exclusions_csr(searches)
    av_offsets, av_day, av_from, av_to = schedules_csr(
        [s.zeitliche_verfuegbarkeit for s in searches]
    )
    as_int = np.int64
    max_km = np.array(max_km, np.float64)
    arrays = SearchArrays(
        ids=np.array(ids, as_int),
        lat=np.array(lat, np.float64),
        lon=np.array(lon, np.float64),
        max_km=max_km,
        wait=wait,
        created=created.astype(np.int64).astype(np.float64),
        pending=np.array(pending, as_int),
        gender=np.array(gen, as_int),
        pref_gender=np.array(pref, as_int),
        pref_procedure=np.array(proc, as_int),
        age=np.array(age, as_int),
        group_open=np.array(group, as_int),
        symptoms=np.array(sym, as_int),
        excl_start=excl_offsets,
        excl_ids=excl_ids,
        av_start=av_offsets,
        av_day=av_day,
        av_from=av_from,
        av_to=av_to,
        order=np.zeros(0, as_int),
        cell_start=np.zeros(1, as_int),
        grid_lat0=0.0,
        grid_lon0=0.0,
        grid_rows=0,
        grid_cols=0,
        reach_km=float(max_km.max()) if len(searches) else 0.0,
    )
    _build_grid(arrays)
    return arrays


def _build_grid(a: SearchArrays) -> None:
    """Bucket located searches by cell; unlocated ones are left out (they fail H1 anyway)."""
    located = np.flatnonzero(~(np.isnan(a.lat) | np.isnan(a.lon)))
    if located.size == 0:
        return
    a.grid_lat0 = float(np.floor(a.lat[located].min() / CELL_LAT_DEG) * CELL_LAT_DEG)
    a.grid_lon0 = float(np.floor(a.lon[located].min() / CELL_LON_DEG) * CELL_LON_DEG)
    rows = ((a.lat[located] - a.grid_lat0) / CELL_LAT_DEG).astype(np.int64)
    cols = ((a.lon[located] - a.grid_lon0) / CELL_LON_DEG).astype(np.int64)
    a.grid_rows, a.grid_cols = int(rows.max()) + 1, int(cols.max()) + 1
    cells = rows * a.grid_cols + cols
    # Within a cell, longest waiting first (then start, id): the kernel may stop
    # reading a cell once its waiting times can no longer make a bundle.
    loc = located
    sort = np.lexsort((a.ids[loc], a.created[loc], -a.wait[loc], cells))
    a.order = located[sort]
    counts = np.bincount(cells, minlength=a.grid_rows * a.grid_cols)
    a.cell_start = np.zeros(a.grid_rows * a.grid_cols + 1, dtype=np.int64)
    np.cumsum(counts, out=a.cell_start[1:])


@dataclass
class TherapistArrays:
    ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    gender: np.ndarray
    procedure: np.ndarray
    age_min: np.ndarray
    age_max: np.ndarray
    pref_gender: np.ndarray
    group: np.ndarray
    symptoms: np.ndarray
    av_start: np.ndarray
    av_day: np.ndarray
    av_from: np.ndarray
    av_to: np.ndarray


def build_therapist_arrays(therapists: list[TherapistData]) -> TherapistArrays:
    gender, preference = rules.GENDER.get, rules.GENDER_PREFERENCE.get
    procedure, bound, mask = rules.PROCEDURE.get, rules.bound_code, rules.symptom_mask
    nan = math.nan
    columns = (
        list(
            zip(
                *[
                    (
                        t.id,
                        nan if t.latitude is None else t.latitude,
                        nan if t.longitude is None else t.longitude,
                        gender(t.geschlecht, 3),
                        procedure(t.psychotherapieverfahren, 0),
                        bound(t.alter_min),
                        bound(t.alter_max),
                        preference(t.geschlechtspraeferenz, -1),
                        bool(t.bevorzugt_gruppentherapie),
                        mask(t.bevorzugte_symptome) if t.bevorzugte_symptome else 0,
                    )
                    for t in therapists
                ],
                strict=True,
            )
        )
        or [()] * 10
    )
    ids, lat, lon, gen, proc, amin, amax, pref, group, sym = columns
    av_offsets, av_day, av_from, av_to = schedules_csr([t.arbeitszeiten for t in therapists])
    as_int = np.int64
    return TherapistArrays(
        ids=np.array(ids, as_int),
        lat=np.array(lat, np.float64),
        lon=np.array(lon, np.float64),
        gender=np.array(gen, as_int),
        procedure=np.array(proc, as_int),
        age_min=np.array(amin, as_int),
        age_max=np.array(amax, as_int),
        pref_gender=np.array(pref, as_int),
        group=np.array(group, np.bool_),
        symptoms=np.array(sym, as_int),
        av_start=av_offsets,
        av_day=av_day,
        av_from=av_from,
        av_to=av_to,
    )
