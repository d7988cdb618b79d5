"""PLZ centroids: loading them from the GeoNames file and looking them up.

The centroid of a PLZ is the mean of its places' coordinates (domain.md 4.8);
pgeocode computes exactly that from ``shared/data/geonames/DE.txt``, offline.
"""

from __future__ import annotations

import csv
import math

from psymatch import settings
from psymatch.domain.geo import bundesland

from .database import db
from .models import PlzCentroid


def read_centroids() -> list[dict]:
    """All PLZ centroids of the GeoNames file as rows for ``plz_centroids``."""
    cache = settings.prepare_pgeocode()
    with open(cache / "DE.txt", encoding="utf-8", newline="") as handle:
        codes = sorted({row["postal_code"] for row in csv.DictReader(handle)})
    import pgeocode  # after prepare_pgeocode: it reads PGEOCODE_DATA_DIR at import

    frame = pgeocode.Nominatim("de").query_postal_code(codes)
    rows = []
    for record in frame.to_dict("records"):
        lat, lon = record["latitude"], record["longitude"]
        if not isinstance(record["postal_code"], str) or len(record["postal_code"]) != 5:
            continue
        if lat is None or lon is None or math.isnan(lat) or math.isnan(lon):
            continue
        place = record["place_name"] if isinstance(record["place_name"], str) else ""
        name, code = bundesland(
            record["state_name"] if isinstance(record["state_name"], str) else None
        )
        rows.append(
            {
                "plz": record["postal_code"],
                "ort": place.split(",")[0][:200],
                "bundesland": name,
                "bundesland_code": code,
                "latitude": float(lat),
                "longitude": float(lon),
            }
        )
    return rows


def ensure_loaded(report=None) -> int:
    """Fill ``plz_centroids`` once; returns the number of centroids present."""
    count = PlzCentroid.select().count()
    if count:
        return count
    rows = read_centroids()
    with db.atomic():
        for start in range(0, len(rows), 1000):
            PlzCentroid.insert_many(rows[start : start + 1000]).on_conflict_ignore().execute()
    if report:
        report(f"loaded {len(rows)} PLZ centroids from GeoNames (CC BY 4.0)")
    return len(rows)


def centroid_map() -> dict[str, tuple[float, float]]:
    """PLZ -> (latitude, longitude) for every known PLZ (about 11k entries)."""
    query = PlzCentroid.select(PlzCentroid.plz, PlzCentroid.latitude, PlzCentroid.longitude)
    return {plz: (lat, lon) for plz, lat, lon in query.tuples()}
