"""Distances and German regions (docs/domain.md §6.4, §8.2), pure functions."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

EARTH_RADIUS_KM = 6371.0088

# GeoNames spells Bundesländer in German and English; holidays want ISO codes.
BUNDESLAND_CODES = {
    "baden-württemberg": ("Baden-Württemberg", "BW"),
    "bayern": ("Bayern", "BY"),
    "bavaria": ("Bayern", "BY"),
    "berlin": ("Berlin", "BE"),
    "land berlin": ("Berlin", "BE"),
    "brandenburg": ("Brandenburg", "BB"),
    "bremen": ("Bremen", "HB"),
    "hamburg": ("Hamburg", "HH"),
    "hessen": ("Hessen", "HE"),
    "hesse": ("Hessen", "HE"),
    "mecklenburg-vorpommern": ("Mecklenburg-Vorpommern", "MV"),
    "mecklenburg-western pomerania": ("Mecklenburg-Vorpommern", "MV"),
    "niedersachsen": ("Niedersachsen", "NI"),
    "lower saxony": ("Niedersachsen", "NI"),
    "nordrhein-westfalen": ("Nordrhein-Westfalen", "NW"),
    "north rhine-westphalia": ("Nordrhein-Westfalen", "NW"),
    "rheinland-pfalz": ("Rheinland-Pfalz", "RP"),
    "rhineland-palatinate": ("Rheinland-Pfalz", "RP"),
    "saarland": ("Saarland", "SL"),
    "sachsen": ("Sachsen", "SN"),
    "saxony": ("Sachsen", "SN"),
    "sachsen-anhalt": ("Sachsen-Anhalt", "ST"),
    "saxony-anhalt": ("Sachsen-Anhalt", "ST"),
    "schleswig-holstein": ("Schleswig-Holstein", "SH"),
    "thüringen": ("Thüringen", "TH"),
    "thuringia": ("Thüringen", "TH"),
}


def bundesland(name: str | None) -> tuple[str | None, str | None]:
    """Canonical German name and ISO code of a Bundesland spelled either way."""
    if not name or not isinstance(name, str):
        return None, None
    return BUNDESLAND_CODES.get(name.strip().lower(), (name.strip(), None))


@njit(cache=True)
def haversine_km(lat1, lon1, lat2, lon2, radius_km=EARTH_RADIUS_KM):
    """Great-circle distance in km, rounded to 2 decimals as docs/domain.md §6.4 says.

    Compiled (numba) so that the bundle round's kernel and the Python code that
    explains a single decision compute the very same rounded value.
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return np.round(2.0 * radius_km * math.asin(min(1.0, math.sqrt(a))), 2)


def haversine_km_many(lat, lon, lats, lons, radius_km: float = EARTH_RADIUS_KM) -> np.ndarray:
    """Vectorised haversine from one point to many, rounded like ``haversine_km``."""
    p1, p2 = np.radians(lat), np.radians(np.asarray(lats, dtype=float))
    dp, dl = p2 - p1, np.radians(np.asarray(lons, dtype=float) - lon)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.round(2 * radius_km * np.arcsin(np.minimum(1.0, np.sqrt(a))), 2)
