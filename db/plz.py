"""PLZ centroids: loading them from the GeoNames file and looking them up.

The centroid of a PLZ is the mean of its places' coordinates (docs/domain.md §3);
pgeocode computes exactly that, offline, from the GeoNames postal-code export
that psymatch ships in ``db/data/geonames_DE.txt.gz`` (CC BY 4.0, see the README).
``GEONAMES_FILE`` may name another copy, plain or gzipped, in the same format.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
from importlib import resources
from pathlib import Path

from psymatch import settings
from psymatch.domain.geo import bundesland

from .database import db
from .models import PlzCentroid

SHIPPED_GEONAMES = "data/geonames_DE.txt.gz"


class GeonamesMissing(RuntimeError):
    """``GEONAMES_FILE`` names a file that is not there."""


def geonames_bytes() -> bytes:
    """The GeoNames postal-code file (uncompressed CSV): ``GEONAMES_FILE`` or the shipped copy."""
    configured = settings.get().GEONAMES_FILE
    if configured:
        path = Path(configured)
        if not path.exists():
            raise GeonamesMissing(f"GEONAMES_FILE {path} does not exist")
        data = path.read_bytes()
    else:
        data = resources.files("db").joinpath(SHIPPED_GEONAMES).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def open_geonames() -> io.TextIOWrapper:
    """The GeoNames file as text, for ``csv.DictReader``."""
    return io.TextIOWrapper(io.BytesIO(geonames_bytes()), encoding="utf-8", newline="")


def prepare_pgeocode() -> Path:
    """Point pgeocode at a writable cache holding the GeoNames file.

    pgeocode reads ``$PGEOCODE_DATA_DIR/DE.txt`` at import time and writes an
    index beside it, so the (uncompressed) file is written into
    ``PGEOCODE_DATA_DIR`` once and rewritten when its content changes.
    """
    cache = Path(settings.get().PGEOCODE_DATA_DIR)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / "DE.txt"
    data = geonames_bytes()
    if not target.exists() or target.read_bytes() != data:
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        index = cache / "DE-index.txt"
        if index.exists():
            index.unlink()
    os.environ["PGEOCODE_DATA_DIR"] = str(cache)
    return cache


def read_centroids() -> list[dict]:
    """All PLZ centroids of the GeoNames file as rows for ``plz_centroids``."""
    cache = prepare_pgeocode()
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
